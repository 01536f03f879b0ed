"""Run folders at URIs (s3://bucket/prefix, gs://…, any fsspec filesystem): stage locally, publish whole.

A run needs a real filesystem while it works (resume records, temp + rename, hard links), so a run whose
output is a URI works in a local STAGING folder (`--staging`, the job's `staging`, default
~/.cache/gristmill/staging/<name>-<hash of the URI>) and, once complete, is published to the URI:

  1. `_SUCCESS` at the URI is removed first (from then on a reader sees no complete run there), then
     what an earlier run left under the run's own names (curated/, rejected/, quarantine/, shards/,
     crawl/, stats.json, job.resolved.yaml: run_folder.PUBLISHED), as `RunFolder.clear` does for a local folder;
  2. every file of the staging folder but .work/ is uploaded (an object store writes each object
     whole: a reader never sees half a file), stats.json last;
  3. the sizes at the URI are checked against the staging folder, then `_SUCCESS` is written: a JSON
     manifest of every file with its size and sha256. A reader that finds `_SUCCESS` finds the whole
     run (`gristmill stats URI` refuses a prefix without one).

The staging folder is removed after a published run. `--resume` finishes an interrupted run from its
staging folder (same URI, same `--staging`); a run that completed but failed to upload is uploaded
again. A lost staging folder cannot be resumed (the resume records live only there): run again
without --resume. Credentials and the endpoint come from the environment, as fsspec/s3fs read them
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL or FSSPEC_S3_ENDPOINT_URL, …); Ray read
tasks get the driver's values of `FORWARDED_ENV` (see `worker_env`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from gristmill.pipeline.engine.run_folder import PUBLISHED, STATS, SUCCESS, WORK, RunFolder
from gristmill.schemas.job import JobError
from gristmill.schemas.shards import sha256_file

RUN_NAMES = PUBLISHED  # what a run writes at its top level (run_folder.py)
# Storage settings the Ray workers reading remote inputs need from the driver's environment. File-based
# settings (AWS_PROFILE, AWS_CONFIG_FILE) name things on this machine only, so they are not forwarded.
FORWARDED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")
FORWARDED_PREFIX = "FSSPEC_"
OBJECT_STORES = ("s3", "s3a", "gs", "gcs", "abfs", "az")  # a bucket must exist before a run writes into it


class StorageError(JobError):
    """An output or input URI that cannot be used: unknown scheme, missing package, bucket, credentials."""


def is_uri(location: str | Path | None) -> bool:
    """True for a remote URI (s3://…, gs://…, memory://…); False for a local path or file://."""
    text = str(location or "")
    return "://" in text and not text.startswith("file://")


def staging_folder(uri: str, staging: str | Path | None = None) -> Path:
    """The local folder a run to `uri` works in: `staging`, else one per URI under the user cache."""
    if staging:
        return Path(staging)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tail = re.sub(r"[^A-Za-z0-9_.-]+", "_", uri.rstrip("/").rsplit("/", 1)[-1])[:40] or "run"
    return cache / "gristmill" / "staging" / f"{tail}-{hashlib.sha256(uri.encode()).hexdigest()[:16]}"


def filesystem(uri: str):
    """(fsspec filesystem, path without protocol) for `uri`, or a StorageError saying what is missing."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except ImportError as err:
        raise StorageError(f"{uri}: {err} (for s3://: pip install 'gristmill[s3]')") from None
    except ValueError as err:
        raise StorageError(f"{uri}: {err}") from None
    return fs, path.rstrip("/")


def _clear(err: Exception, uri: str, doing: str) -> StorageError:
    """A storage failure as one line: what was being done, where, and the store's own words."""
    name = type(err).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        hint = "; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile)"
    elif isinstance(err, PermissionError):
        hint = "; check the credentials' permissions on it"
    else:
        hint = ""
    return StorageError(f"{doing} {uri}: {err or name}{hint}")


def check_output(uri: str) -> None:
    """Fail before any work if `uri` cannot hold a run: unknown scheme, missing package, missing bucket."""
    fs, path = filesystem(uri)
    if not path or path == fs.root_marker:
        raise StorageError(f"{uri}: give a bucket and prefix for the run, e.g. s3://bucket/runs/name")
    if not any(p in OBJECT_STORES for p in ([fs.protocol] if isinstance(fs.protocol, str) else fs.protocol)):
        return  # other filesystems make the folders they write into
    bucket = path.split("/", 1)[0]
    try:
        exists = fs.exists(bucket)
    except Exception as err:  # botocore's credential and endpoint errors are not OSErrors
        raise _clear(err, uri, "cannot reach") from None
    if not exists:
        raise StorageError(f"{uri}: bucket {bucket!r} does not exist (or these credentials cannot see it)")


def is_complete(uri: str) -> bool:
    fs, path = filesystem(uri)
    try:
        return fs.exists(f"{path}/{SUCCESS}")
    except Exception as err:
        raise _clear(err, uri, "cannot read") from None


def run_files(folder: Path) -> list[str]:
    """The files of a finished run folder that are published, relative and sorted (never .work/)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.relative_to(folder).parts[0] != WORK)


def upload_run(folder: Path, uri: str, log=print) -> dict:
    """Publish the finished run in `folder` to `uri` (the steps of the module docstring); returns the manifest."""
    fs, path = filesystem(uri)
    files = run_files(folder)
    if STATS not in files:
        raise StorageError(f"{folder} is not a finished run (no stats.json); nothing uploaded to {uri}")
    manifest = {"files": {name: {"bytes": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)}
                          for name in files}}
    try:
        if fs.exists(f"{path}/{SUCCESS}"):
            fs.rm(f"{path}/{SUCCESS}")
        stale = [f"{path}/{name}" for name in RUN_NAMES if fs.exists(f"{path}/{name}")]
        if stale:
            fs.rm(stale, recursive=True)
        first = [name for name in files if name != STATS]
        if first:
            fs.put([str(folder / name) for name in first], [f"{path}/{name}" for name in first])
        fs.put(str(folder / STATS), f"{path}/{STATS}")
        fs.invalidate_cache()
        found = {fs.unstrip_protocol(p): info["size"] for p, info in fs.find(path, detail=True).items()}
        wrong = [name for name, entry in manifest["files"].items()
                 if found.get(fs.unstrip_protocol(f"{path}/{name}")) != entry["bytes"]]
        if wrong:
            raise StorageError(f"upload to {uri} incomplete: {len(wrong)} file(s) missing or of another size, "
                               f"e.g. {wrong[0]}; rerun with --resume to upload again")
        fs.pipe(f"{path}/{SUCCESS}", (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    except StorageError:
        raise
    except Exception as err:
        raise _clear(err, uri, "cannot upload the run to") from None
    log(f"gristmill: published {len(files)} file(s) to {uri} ({SUCCESS} last)")
    return manifest


def read_run_file(location: str | Path, name: str) -> bytes:
    """A file of a finished run, local or at a URI (only a URI with `_SUCCESS`: a complete upload)."""
    if not is_uri(location):
        path = Path(str(location).removeprefix("file://")) / name
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: is {location} a finished gristmill run?")
        return path.read_bytes()
    uri = str(location).rstrip("/")
    fs, path = filesystem(uri)
    try:
        if not fs.exists(f"{path}/{SUCCESS}"):
            raise FileNotFoundError(f"{uri}/{SUCCESS} not found: {uri} holds no complete gristmill run "
                                    "(not finished, still uploading, or another prefix)")
        return fs.cat_file(f"{path}/{name}")
    except FileNotFoundError:
        raise
    except Exception as err:
        raise _clear(err, uri, "cannot read") from None


def worker_env(paths: list[str]) -> dict:
    """Ray remote args that give the read tasks this process's storage settings when an input is remote:
    workers started before they were set (or on other nodes) would not see them otherwise. Empty for
    local inputs, so local runs start their workers exactly as before."""
    if not any(is_uri(p) for p in paths):
        return {}
    env = {k: v for k, v in os.environ.items() if k in FORWARDED_ENV or k.startswith(FORWARDED_PREFIX)}
    return {"runtime_env": {"env_vars": env}} if env else {}


def remove_staging(folder: Path) -> None:
    """Remove what the run wrote in its staging folder (only that: `--staging` may name a shared folder)."""
    for name in (*RUN_NAMES, WORK):
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    try:
        folder.rmdir()  # only when nothing else is left there
    except OSError:
        pass


def _from_remote_stats(uri: str, read):
    """`read(folder)` of a local folder holding only the stats.json of the run published at `uri`."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        RunFolder(folder).stats.write_bytes(read_run_file(uri, STATS))
        return read(Path(folder))


def remote_result(uri: str, load_result):
    """The RunResult of the complete run at `uri`: `load_result(folder)` over its stats.json."""
    return dataclasses.replace(_from_remote_stats(uri, load_result), uri=uri)


def check_resumable(uri: str, folder: Path, resume: bool, load_result, log=print):
    """Before a run into `uri` staged in `folder`: with --resume and no interrupted run staged there, the
    RunResult of the complete run at the URI (`load_result(folder)`: nothing to do), or a clear error;
    else None."""
    staged = RunFolder(folder)
    if resume and not staged.is_complete() and not staged.identity.exists():
        if is_complete(uri):
            log(f"gristmill: {uri} is a complete run; nothing to resume")
            return remote_result(uri, load_result)
        raise StorageError(f"no interrupted run of {uri} in its staging folder {folder} (removed, or another "
                           "--staging?): the resume state lives only there; run without --resume to start over")
    return None


def stats_of_uri(uri: str, view) -> dict:
    """`view(folder)` (e.g. `cli.report.stats_view`) of the run published at `uri`: its stats.json is all
    a view may read."""
    return _from_remote_stats(uri, view)
