"""Helpers for the inspection tests: one quickstart run shared by the test modules of a session, and a
small Chrome DevTools protocol client for the real headless Chromium that checks report.html."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from support.repo import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update"]
_RUNS: dict[str, Path] = {}


def quickstart_run(tmp_path_factory, updates: dict | None = None) -> Path:
    """The quickstart job, with `updates` ({section: {key: value}}) applied, run once per session on the
    session's Ray."""
    from gristmill.pipeline.engine.api import run
    from gristmill.schemas.job import Job, load_job

    key = json.dumps(updates or {}, sort_keys=True)
    if key not in _RUNS:
        job = load_job(REPO / "jobs" / "demo-archive.yaml")
        if updates:
            data = job.model_dump(mode="json")
            for section, values in updates.items():
                data[section] = {**(data.get(section) or {}), **values}
            job = Job.model_validate(data)
        out = tmp_path_factory.mktemp("quickstart")
        run(job, output=out, log=lambda m: None)
        _RUNS[key] = out
    return _RUNS[key]


def ensure_chromium() -> str:
    """Debian's chromium: installed with apt-get when missing; the test is skipped when that cannot be done."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if shutil.which("apt-get") and os.geteuid() == 0:
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "timeout": 900, "check": False}
        if subprocess.run(install, **quiet).returncode != 0:  # a fresh machine has no package lists yet
            subprocess.run(["apt-get", "update", "-q"], **quiet)
            subprocess.run(install, **quiet)
    if not os.path.exists(CHROMIUM):
        if os.environ.get("GRISTMILL_REQUIRE_CHROMIUM") == "1":  # CI: the browser test must run, not skip
            pytest.fail(f"{CHROMIUM} missing and `apt-get install -y chromium` did not provide it")
        pytest.skip(f"{CHROMIUM} missing and `apt-get install -y chromium` did not provide it "
                    "(needs root and a Debian package mirror)")
    return CHROMIUM


class Browser:
    """Headless Chromium driven over the DevTools protocol (websocket on 127.0.0.1). Records console
    errors, uncaught exceptions and every network request the page makes."""

    def __init__(self, chromium: str, timeout_s: float = 30.0):
        import websocket

        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="gristmill-chromium-")
        # A host-resolver rule that resolves nothing: if the page asked for the network, the request is
        # still recorded (and fails the test) but never leaves the machine.
        self.process = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={self.profile}", "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,2000",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout_s, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        message_id = next(self.ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)
        raise TimeoutError(method)

    def wait_event(self, method: str) -> dict:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("method") == method:
                return message
            self.events.append(message)
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")
        self.call("Runtime.evaluate", expression="1", awaitPromise=True)  # drain: scripts ran before load

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def console_errors(self) -> list[str]:
        errors = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(json.dumps(params.get("args")))
            elif method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        return errors

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> Path:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=min(height, 6000), deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            shutil.rmtree(self.profile, ignore_errors=True)
