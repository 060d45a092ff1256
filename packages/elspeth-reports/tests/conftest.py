"""Fixtures: results shaped as real runs make them, and headless Chromium driven over the DevTools protocol."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from elspeth import Failure, PluginContext, Record, RunMetadata, RunOutcome, RunResult

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_TIMEOUT_S = 900


# ---------------------------------------------------------------------------------------------- results


def _scores(seed: int, i: int) -> float:
    return round(0.4 + ((i * 37 + seed * 11) % 50) / 100, 4)


@pytest.fixture
def ctx(tmp_path: Path) -> PluginContext:
    return PluginContext(run_id="run-1", name="report-test", base_dir=tmp_path, output_dir=tmp_path / "out")


def make_experiment_result(names: tuple[str, ...] = ("baseline", "strict", "loose"), rows: int = 12) -> RunResult:
    """A result with the keys the experiment orchestrator and its plugins write (taken from a real run)."""
    records: list[Record] = []
    for k, name in enumerate(names):
        for i in range(rows):
            records.append(
                Record(
                    row_id=f"r{i:02d}",
                    inputs={"id": f"r{i:02d}", "review": f"review {i}"},
                    outputs={"response": f"Score: {_scores(k, i)}"},
                    metrics={
                        "latency_s": 0.01 * (1 + (i + k) % 5),
                        "prompt_tokens": 50 + i,
                        "completion_tokens": 20,
                        "cost": 0.0001 * (k + 1),
                        "scores": {"default": _scores(k, i), "tone": _scores(k + 3, i)},
                        "score_flags": {"default": _scores(k, i) >= 0.6},
                        **({"validation_retries": 1} if i == 0 else {}),
                    },
                    group=name,
                )
            )
    failures = [
        Failure(
            row_id="r99",
            inputs={"id": "r99", "review": "boom"},
            stage="llm",
            error="LLMCallFailed: RateLimitError: 429 (gave up after 3 attempts)",
            attempts=[{"attempt": n, "error": "429", "stage": "llm"} for n in (1, 2, 3)],
            group=names[-1],
        )
    ]
    experiments: dict[str, Any] = {}
    for name in names:
        mine = [r for r in records if r.group == name]
        mean = sum(r.metrics["scores"]["default"] for r in mine) / len(mine)
        experiments[name] = {
            "baseline": name == names[0],
            "rows": rows + (name == names[-1]),
            "succeeded": rows,
            "failed": int(name == names[-1]),
            "not_run": 0,
            "early_stop": (
                {"plugin": "threshold", "row_id": "r11", "reason": "mean of cost is 0.1, gte 0.1"}
                if name == names[-1] and len(names) > 1
                else None
            ),
            "aggregates": {
                "score_stats": {
                    "criteria": {"default": {"mean": mean, "ci": [mean - 0.05, mean + 0.05], "pass_rate": 0.5}},
                    "overall": {"count": rows, "mean": mean, "ci": [mean - 0.05, mean + 0.05], "pass_rate": 0.5},
                },
                "cost_summary": {
                    "rows": rows,
                    "total_tokens": {"count": rows, "total": 70.0 * rows, "mean": 70.0},
                    "cost": {"count": rows, "total": 0.0001 * rows * (names.index(name) + 1), "mean": 0.0001},
                    "rows_with_cost": rows,
                },
                "latency_summary": {"count": rows, "mean": 0.03, "median": 0.03, "p50": 0.03, "p95": 0.05},
                "score_recommendation": {
                    "n": rows,
                    "missing": 0,
                    "caveats": ["criteria are pooled; the interval treats their scores as independent"],
                    "recommendation": "Collect more data before deciding.",
                    "reason": f"only {rows} scores, fewer than the 30 this recommendation needs",
                },
            },
        }
    comparisons: dict[str, Any] = {}
    for j, variant in enumerate(names[1:], start=1):
        diff = -0.05 * j
        crit = {
            c: {
                "design": "paired",
                "n": rows,
                "baseline_mean": 0.65,
                "variant_mean": 0.65 + diff,
                "mean_difference": diff + (0.01 if c == "tone" else 0),
                "ci": [diff - 0.07, diff + 0.03 * j],
                "ci_method": "percentile bootstrap of the mean paired difference, 10000 resamples, seed 0",
                "cohens_d": -0.34 * j,
                "cliffs_delta": -0.25,
                "cliffs_label": "small",
                "test": "paired t-test",
                "p_value": 0.0156 * j,
                "p_adjusted": 0.0311 * j,
                "family_size": 2 * (len(names) - 1),
                "significant": 0.0311 * j < 0.05,
                "direction": "lower",
                "power": {
                    "target": 0.8,
                    "effect": 0.34,
                    "n_required": 70,
                    "warning": f"{rows} pairs is below the 70 needed for 80% power at effect 0.34",
                },
                "mcnemar": {"n": rows, "p_value": 0.18, "p_adjusted": 0.36, "method": "McNemar exact binomial"},
            }
            for c in ("default", "tone")
        }
        comparisons[variant] = {
            "score_significance": {"criteria": crit, "alpha": 0.05, "correction": "holm"},
            "score_bayes": {
                "criteria": {
                    c: {
                        "design": "paired",
                        "n": rows,
                        "mean_difference": {
                            "mean": diff,
                            "prob_variant_better": 0.078,
                            "credible_interval": [diff - 0.08, diff + 0.02],
                            "credibility": 0.95,
                        },
                        "pass_rate": {"mean": -0.2, "prob_variant_better": 0.08, "credible_interval": [-0.48, 0.08]},
                    }
                    for c in ("default", "tone")
                }
            },
        }
    aggregates = {"baseline": names[0], "experiments": experiments, "comparisons": comparisons}
    metadata = RunMetadata(
        run_id="run-1",
        name="report-test",
        orchestrator="experiment",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:03+00:00",
        duration_s=3.1,
        rows=rows + 1,
        succeeded=len(records),
        failed=len(failures),
        outcome=RunOutcome("stopped", "early stop by threshold (variant)"),
        extra={"experiments": list(names)},
        security_level="OFFICIAL",
        cost={"currency": "USD", "total_cost": 0.0072, "calls": 37, "tokens": {"prompt": 3042}},
    )
    return RunResult(records=records, failures=failures, aggregates=aggregates, metadata=metadata)


@pytest.fixture
def experiment_result() -> RunResult:
    return make_experiment_result()


@pytest.fixture
def make_result() -> Any:
    """``make_result(names, rows)``: an experiment result with these experiments (the first is the baseline)."""
    return make_experiment_result


EXAMPLE_SETTINGS_ADDITIONS = {
    "    seed: 7\n": "    seed: 7\n    failure_rate: 0.05\n",
    "    aggregators:\n      - score_stats\n": (
        "    aggregators:\n      - score_stats\n      - cost_summary\n      - latency_summary\n"
        "      - score_recommendation\n    comparisons:\n      - score_significance\n      - score_bayes\n"
    ),
    "concurrency: 8\n": (
        "concurrency: 8\n\ncost_tracker:\n  plugin: price_table\n  options:\n"
        "    prices:\n      '*': {input: 1.0, output: 2.0}\n"
    ),
}


@pytest.fixture
def example_project(tmp_path: Path) -> Any:
    """``example_project(sinks_yaml)``: ``elspeth init``'s project with cost, latency, recommendation and both
    comparisons configured and ``sinks_yaml`` (list items) added to its sinks; returns the project folder."""
    pytest.importorskip("elspeth_experiment", reason="the example project needs elspeth-orchestrator-experiment")
    from elspeth_testing import run_cli

    def make(sinks_yaml: str) -> Path:
        done = run_cli("init", str(tmp_path / "project"), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        settings = tmp_path / "project" / "settings.yaml"
        text = settings.read_text(encoding="utf-8")
        for old, new in {**EXAMPLE_SETTINGS_ADDITIONS, "\nsinks:\n": f"\nsinks:\n{sinks_yaml}"}.items():
            assert old in text, f"elspeth init's settings changed: {old!r} not found"
            text = text.replace(old, new, 1)
        settings.write_text(text, encoding="utf-8")
        return tmp_path / "project"

    return make


# ---------------------------------------------------------------------------------------------- chromium


def _install_chromium() -> None:
    """Install Debian's chromium once per machine; a file lock keeps parallel sessions from colliding."""
    lock_path = Path(tempfile.gettempdir()) / "elspeth-chromium-install.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another session installs
        if CHROMIUM.exists():
            return
        apt = shutil.which("apt-get")
        hint = "install the Debian packages `chromium` and `chromium-driver`, or set ELSPETH_SKIP_BROWSER=1 to skip"
        if apt is None:
            pytest.fail(f"{CHROMIUM} is missing and there is no apt-get to install it: {hint}", pytrace=False)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in ([apt, "update"], [apt, "install", "-y", "chromium", "chromium-driver"]):
            try:
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"`{' '.join(cmd)}` took over {INSTALL_TIMEOUT_S} s: {hint}", pytrace=False)
            if done.returncode != 0:
                tail = (done.stdout + done.stderr)[-2000:]
                pytest.fail(f"`{' '.join(cmd)}` failed ({done.returncode}): {hint}\n{tail}", pytrace=False)
        if not CHROMIUM.exists():
            pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing: {hint}", pytrace=False)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Path of Chromium, installed from Debian's packages if missing (skipped only with ELSPETH_SKIP_BROWSER=1)."""
    if os.environ.get("ELSPETH_SKIP_BROWSER") == "1":
        pytest.skip("ELSPETH_SKIP_BROWSER=1: browser tests skipped")
    if not CHROMIUM.exists():
        _install_chromium()
    return CHROMIUM


@dataclass
class Page:
    """One browser tab, driven over the Chrome DevTools protocol; events are kept for the test to inspect."""

    ws: Any
    events: list[dict[str, Any]] = field(default_factory=list)
    _next_id: int = 0

    def _receive(self, timeout: float) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.ws.recv(timeout=max(0.01, timeout)))
        if message.get("method") == "Page.javascriptDialogOpening":
            # a dialog blocks the page until answered: record it (the test fails on it) and close it
            self._next_id += 1
            self.ws.send(
                json.dumps({"id": self._next_id, "method": "Page.handleJavaScriptDialog", "params": {"accept": True}})
            )
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline - time.monotonic())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline - time.monotonic())
            self.events.append(message)
            if message.get("method") == method:
                return message

    def drain(self, seconds: float = 0.3) -> None:
        """Collect events that arrive within ``seconds`` (late console messages, dialogs)."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            while (left := deadline - time.monotonic()) > 0:
                self.events.append(self._receive(left))

    def open(self, path: Path, width: int = 1280, height: int = 900) -> None:
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Page.navigate", {"url": path.resolve().as_uri()})
        self.wait_for("Page.loadEventFired")
        self.drain()

    def evaluate(self, expression: str) -> Any:
        out = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in out:
            raise RuntimeError(f"evaluate failed: {out['exceptionDetails']}")
        return out["result"].get("value")

    def screenshot(self, target: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        target.write_bytes(base64.b64decode(data))
        return target

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(json.dumps(params.get("args", []))[:500])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        return errors

    def dialogs(self) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e.get("method") == "Page.javascriptDialogOpening"]

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]


@pytest.fixture
def browser_page(chromium_path: Path, tmp_path: Path) -> Iterator[Page]:
    """A fresh headless Chromium (own profile, no network services) and one tab in it."""
    from websockets.sync.client import connect

    profile = Path(tempfile.mkdtemp(prefix="elspeth-chromium-", dir=tmp_path))
    args = [
        str(chromium_path),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    log = (tmp_path / "chromium.log").open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start: {(tmp_path / 'chromium.log').read_text()[-2000:]}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            targets = json.load(reply)
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        with connect(url, max_size=None, open_timeout=10) as ws:
            yield Page(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
