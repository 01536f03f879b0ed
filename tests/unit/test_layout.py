"""The shape of the code (issue 27): no import cycle, counting the imports inside functions; no module but
the run folder object spells a run-folder name; the README's tree names the folders that exist."""

from __future__ import annotations

import ast
from pathlib import Path

from support.repo import REPO

PACKAGES = {"pipeline": "gristmill.pipeline", "filters": "gristmill.filters", "schemas": "gristmill.schemas",
            "train": "gristmill.train"}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the gristmill modules it imports anywhere in its body (functions included; not the
    annotations-only imports under `if TYPE_CHECKING:`, which never run)."""
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(inner) for node in ast.walk(tree)
                       if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
                       for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_counting_imports_inside_functions():
    assert _cycles(_imports(_modules())) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


RUN_FOLDER_NAMES = {"curated", "rejected", "quarantine", "shards", "crawl", "stats.json", "job.resolved.yaml", ".work",
                    "_SUCCESS", "run.json", "parts", "done", "steps", "takedown"}


PATH_CALLS = {"Path", "open", "glob", "rglob", "joinpath", "with_name", "read_run_file", "rmtree", "exists", "fsspec.open"}


def _path_literals(path: Path) -> list[tuple[int, str]]:
    """String literals naming a run-folder entry where a path is built: an operand of `/`, an argument of a
    path-taking call (Path(...), open(...), glob(...)), an element of a tuple or list of names assigned to
    a name, or inside a path string ("…/stats.json"). Docstrings, dict keys and labels are not paths."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        value, parent = node.value, parents.get(node)
        if isinstance(parent, ast.Expr):
            continue  # a docstring
        if value in RUN_FOLDER_NAMES:
            callee = parent.func if isinstance(parent, ast.Call) else None
            name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", None)
            if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Div):
                found.append((node.lineno, value))
            elif name in PATH_CALLS and node in parent.args:
                found.append((node.lineno, value))
            elif isinstance(parent, (ast.Tuple, ast.List, ast.Set)) and isinstance(parents.get(parent), ast.Assign):
                found.append((node.lineno, value))
        elif any(f"/{name}" in value or f"{name}/" in value for name in RUN_FOLDER_NAMES if "." in name):
            found.append((node.lineno, value))
    return found


def test_the_literal_check_sees_paths_and_not_labels(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""About curated/ and stats.json."""\nfrom pathlib import Path\nNAMES = ("curated", "shards")\n'
                      'def f(run, stats):\n    a = run / "curated"\n    b = Path("stats.json")\n    c = stats.get("shards")\n'
                      '    d = f"{run}/.work/x"\n    return stats["curated"]\n')
    assert _path_literals(module) == [(3, "curated"), (3, "shards"), (5, "curated"), (6, "stats.json"), (8, "/.work/x")]


def test_only_the_run_folder_object_spells_run_folder_paths():
    spelled = {}
    for folder in ("pipeline", "filters"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name == "run_folder.py" or "crawl" in path.relative_to(REPO).parts[1:2]:
                continue  # the crawler's own store (crawl/) names its own files
            if literals := _path_literals(path):
                spelled[str(path.relative_to(REPO))] = literals
    assert spelled == {}


def test_the_wheel_installs_and_every_module_imports(tmp_path):
    """Build the wheel, unpack it into a fresh venv (dependencies from this environment, not the
    editable checkout), import every module of it there, and find the shipped models in it: so
    pyproject's package-dir and package-data list every subpackage and file a user needs."""
    import json
    import subprocess
    import sys
    import sysconfig
    import zipfile

    # From a copy of the sources: a build/ folder left in the checkout by an older layout would put its
    # stale modules into the wheel.
    import shutil

    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "build", "dist", "*.egg-info",
                                                                "__pycache__", ".pytest_cache", "tests"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("gristmill-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    modules = sorted(n[:-3].replace("/", ".").removesuffix(".__init__") for n in names if n.endswith(".py"))
    assert set(_modules()) <= set(modules), sorted(set(_modules()) - set(modules))
    assert any(n.startswith("gristmill/filters/models/") and n.endswith(".ftz") for n in names)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True, timeout=120)
    site = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    zipfile.ZipFile(wheel).extractall(site)
    # the dependencies: this environment's site-packages as a plain path (its editable finder does not run)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = ("import importlib, json, sys\nfailed = {}\nfor name in json.loads(sys.argv[1]):\n"
              "    try:\n        importlib.import_module(name)\n    except Exception as err:\n"
              "        failed[name] = repr(err)\n"
              "import gristmill\nprint(json.dumps({'failed': failed, 'from': gristmill.__file__}))\n")
    python = tmp_path / "venv" / "bin" / "python"
    out = subprocess.run([str(python), "-c", script, json.dumps(modules)], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] == {} and result["from"].startswith(str(site))


def _tree() -> dict[str, set[str]]:
    """The README's tree: {top-level folder: {the subfolders listed under it, indented}}."""
    readme = (REPO / "README.md").read_text()
    tree = readme[readme.index("\ngristmill/ "):]
    tree = tree[:tree.index("```")]
    out, top = {}, None
    for line in tree.splitlines():
        words = line.split()
        if not words or not words[0].endswith("/"):
            continue
        if line[:1].strip():
            top = words[0].rstrip("/")
            out[top] = set()
        elif line.startswith("  ") and line[2:3].strip():
            out[top].add(words[0].rstrip("/"))
    return out


def _subfolders(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}


def test_the_readme_tree_names_the_folders_that_exist():
    """Every top-level folder appears in the README's tree, and every folder the tree names exists; the
    subfolders of pipeline/ and tests/ are listed exactly."""
    tree = _tree()
    folders = {p.name for p in REPO.iterdir() if p.is_dir() and not p.name.startswith((".", "_")) and p.name not in
               ("runs", "build", "dist") and not p.name.endswith(".egg-info")}
    assert set(tree) == folders, (sorted(set(tree) - folders), sorted(folders - set(tree)))
    assert tree["pipeline"] == _subfolders(REPO / "pipeline")
    assert tree["tests"] == _subfolders(REPO / "tests") - {"artifacts"} | ({"artifacts"} & tree["tests"])


def test_pipeline_holds_subpackages_only_and_tests_are_grouped():
    """pipeline/ reads as the design: nothing but subpackages at its top. tests/: unit/ and integration/
    hold the test modules, support/ the helpers; nothing else at the top but conftest.py; no test module
    imports another (shared code lives in support/)."""
    assert sorted(p.name for p in (REPO / "pipeline").glob("*.py")) == ["__init__.py"]
    assert all((p / "__init__.py").is_file() for p in (REPO / "pipeline").iterdir() if p.is_dir() and p.name != "__pycache__")
    tests = REPO / "tests"
    assert sorted(p.name for p in tests.glob("*.py")) == ["conftest.py"]
    modules = sorted(tests.rglob("test_*.py"))
    assert modules and {p.parent.name for p in modules} == {"unit", "integration"}
    assert not list((tests / "support").glob("test_*.py"))
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.split(".")[-1].startswith("test_"), (path.name, node.module)


def test_imports_follow_the_layout():
    """Dependencies point one way: the command line and the post-run tools sit on top (nothing below imports
    them); the scoring code (filters/) imports no pipeline module and none of its own training code; the
    demo web is reached only from the api (a `demo_web` job's server) and the command line."""
    graph = _imports(_modules())
    top = ("gristmill.pipeline.cli", "gristmill.pipeline.tools")
    below = [m for m in graph if not m.startswith(top)]
    assert not {m: sorted(t for t in graph[m] if t.startswith(top)) for m in below if any(t.startswith(top) for t in graph[m])}
    scoring = [m for m in graph if m.startswith("gristmill.filters") and not m.startswith("gristmill.filters.training")]
    assert not {m: sorted(graph[m]) for m in scoring
                if any(t.startswith(("gristmill.pipeline", "gristmill.filters.training")) for t in graph[m])}
    demo_users = {m for m in graph if not m.startswith("gristmill.pipeline.demo") and any(t.startswith("gristmill.pipeline.demo") for t in graph[m])}
    assert demo_users <= {"gristmill.pipeline.engine.api"} | {m for m in graph if m.startswith("gristmill.pipeline.cli")}, demo_users
