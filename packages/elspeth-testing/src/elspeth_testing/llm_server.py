"""A real HTTP server on 127.0.0.1 that speaks the OpenAI, Azure OpenAI and Azure Content Safety APIs.

It answers deterministically from each request (``Score: 0.73``, or a JSON object when the request's
``response_format`` asks for one), counts tokens realistically (about four characters a token), and
injects the faults a real service shows: latency and jitter, 429 with ``Retry-After``, 500/503, hangs
past the client's timeout, dropped connections and malformed bodies, either as seeded rates or as
scripted sequences. Every request is recorded (credentials redacted) so a test can check what was
sent, how often, and that no prompt was answered twice.

Example::

    with LLMTestServer(ServerConfig(latency_ms=20, rate_429=0.2)) as server:
        server.script(["429", "429"], match="row 7")   # the first two calls for row 7 get 429
        client = AsyncOpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
        ...
        assert max(server.successes_per_prompt().values()) == 1

By default the server runs on its own event loop in a background thread; ``process=True`` runs it in
a child process (``python -m elspeth_testing.llm_server``), so that it shares neither the event
loop nor the GIL with the client under test, as a benchmark wants.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from elspeth_testing._llm_server_batch_jobs import BatchSettings, BatchStore
from elspeth_testing._llm_server_state import SECRET_FIELDS, Fault, RecordedRequest, Script, ServerConfig, ServerState

__all__ = ["BatchSettings", "Fault", "LLMTestServer", "RecordedRequest", "ServerConfig", "main"]

HOST = "127.0.0.1"
_BANNER = "elspeth-llm-test-server listening on "


class _Running:
    """The aiohttp runner and its loop, on whichever thread serves."""

    def __init__(self, state: ServerState, batches: BatchStore) -> None:
        self.state = state
        self.batches = batches
        self.runner: Any = None
        self.app: Any = None
        self.port = 0

    async def start(self, port: int) -> int:
        from aiohttp import web

        from elspeth_testing._llm_server_app import build_app

        self.app = build_app(self.state, self.batches)
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, HOST, port, backlog=1024)
        await site.start()
        self.port = int(self.runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        from elspeth_testing._llm_server_app import stopping_event

        if self.runner is not None:
            stopping_event(self.app).set()
            await self.runner.cleanup()
            self.runner = None


class LLMTestServer:
    """An OpenAI-compatible test server on 127.0.0.1 (port 0 picks a free port).

    Args:
        config: how it behaves; change it later with :meth:`configure`.
        port: the port to listen on; 0 for any free one.
        process: run in a child process instead of a background thread.

    """

    def __init__(self, config: ServerConfig | None = None, *, port: int = 0, process: bool = False) -> None:
        self._state = ServerState(config)
        self._batches = BatchStore()
        # the child's config route never sends credentials back, so this side remembers the ones it set
        self._secrets = {name: getattr(self._state.config, name) for name in SECRET_FIELDS}
        self._port = port
        self._process_mode = process
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: _Running | None = None
        self._child: subprocess.Popen[str] | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LLMTestServer:
        """Start listening; returns self once the port is bound."""
        if self._process_mode:
            self._start_child()
        else:
            self._start_thread()
        return self

    def _start_thread(self) -> None:
        # imported here, not first on the server's thread: CPython 3.11 compiling modules on two threads at
        # once (pytest rewrites this plugin's modules) can fail with "AST constructor recursion depth mismatch"
        importlib.import_module("elspeth_testing._llm_server_app")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._loop = loop

        def serve() -> None:
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=serve, name="elspeth-llm-test-server", daemon=True)
        self._thread.start()
        ready.wait()
        self._running = _Running(self._state, self._batches)
        self.port = asyncio.run_coroutine_threadsafe(self._running.start(self._port), loop).result(timeout=30)

    def _start_child(self) -> None:
        config = self._state.config.model_dump_json()
        self._child = subprocess.Popen(
            [sys.executable, "-m", "elspeth_testing.llm_server", "--port", str(self._port), "--config", config],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._child.stdout is not None
        line = self._child.stdout.readline()
        if not line.startswith(_BANNER):
            self._child.kill()
            self._child.wait()
            raise RuntimeError(f"the LLM test server process did not start (printed {line!r})")
        self.port = int(line.strip().rsplit(":", 1)[1])

    def stop(self) -> None:
        """Stop listening and release the port; hanging requests are cut off."""
        if self._child is not None:
            self._child.terminate()
            try:
                self._child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            if self._child.stdout is not None:
                self._child.stdout.close()
            self._child = None
        if self._loop is not None and self._running is not None:
            asyncio.run_coroutine_threadsafe(self._running.stop(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._thread is not None
            self._thread.join(timeout=30)
            self._loop.close()
            self._loop = None
            self._running = None

    def __enter__(self) -> LLMTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's root, ``http://127.0.0.1:PORT`` (Azure ``endpoint``, Content Safety ``endpoint``)."""
        return f"http://{HOST}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    # -- control -----------------------------------------------------------------------------------

    def _control(self, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/_elspeth/{path}", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())

    @property
    def config(self) -> ServerConfig:
        """The current configuration."""
        if self._child is not None:
            data = self._control("config")
            data.pop("credentials_set", None)
            return ServerConfig.model_validate({**data, **self._secrets})
        return self._state.config

    def configure(self, **changes: Any) -> None:
        """Change configuration fields while the server runs (see :class:`ServerConfig`)."""
        if self._child is not None:
            self._control("config", changes)
            self._secrets.update({k: v for k, v in changes.items() if k in SECRET_FIELDS})
        else:
            self._state.configure(**changes)

    def script(self, faults: Sequence[str | Fault], *, match: str | None = None, path: str | None = None) -> None:
        """Answer the next matching requests with ``faults``, one each, in order.

        Args:
            faults: e.g. ``["429", "429:2", "500", "hang", "drop", "malformed", "empty", "content_filter", "401"]``.
            match: only requests whose prompt (last user message, or analysed text) contains this.
            path: only requests whose path contains this (e.g. ``"text:analyze"``); default: chat only.

        """
        parsed = [Fault.parse(f) for f in faults]
        if self._child is not None:
            self._control(
                "script",
                {
                    "faults": [f.kind + (f":{f.retry_after}" if f.retry_after is not None else "") for f in parsed],
                    "match": match,
                    "path": path,
                },
            )
        else:
            self._state.add_script(Script(parsed, match, path))

    def configure_batches(self, *, polls_per_step: int | None = None, expire_marker: str | None = None) -> None:
        """How the Batches API behaves: retrievals per status step, and the text that makes a line expire."""
        changes = {"polls_per_step": polls_per_step, "expire_marker": expire_marker}
        self._control("batches", {k: v for k, v in changes.items() if v is not None})

    def reset(self) -> None:
        """Forget recorded requests, scripts and per-prompt counts; the configuration stays."""
        if self._child is not None:
            self._control("reset", {})
        else:
            self._state.reset()
            self._batches.clear()

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        """Every request received so far (oldest first), optionally only those whose path contains ``path``."""
        if self._child is not None:
            records = [RecordedRequest(**r) for r in self._control("requests")]
        else:
            records = self._state.requests()
        return [r for r in records if path is None or path in r.path]

    def successes_per_prompt(self) -> dict[str, int]:
        """How many successful replies each prompt (last user message) received, live or in a batch; 2+: a duplicate."""
        if self._child is None:
            counts = self._state.successes_per_prompt()
        else:
            counts = {}
            for rec in self.requests("chat/completions"):
                if rec.outcome == "ok":
                    counts[rec.prompt] = counts.get(rec.prompt, 0) + 1
        for prompt, answered in self._batch_report()["answered"].items():
            counts[prompt] = counts.get(prompt, 0) + answered
        return counts

    # -- Anthropic and Gemini batch jobs ------------------------------------------------------------------------------

    def _batch_report(self) -> dict[str, Any]:
        if self._child is not None:
            report: dict[str, Any] = self._control("batch-jobs")
            return report
        return {
            "settings": self._batches.settings.model_dump(),
            "batches": self._batches.summaries(),
            "answered": dict(self._batches.answered),
        }

    def configure_batch_jobs(self, **changes: Any) -> None:
        """How Anthropic and Gemini batch jobs behave (see :class:`BatchSettings`: ``polls``, ``seconds``, limits)."""
        if self._child is not None:
            self._control("batch-jobs", changes)
        else:
            self._batches.configure(**changes)

    @property
    def batch_job_settings(self) -> BatchSettings:
        """How Anthropic and Gemini batch jobs behave now."""
        return BatchSettings.model_validate(self._batch_report()["settings"])

    def batch_jobs(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Every Anthropic or Gemini batch submitted, oldest first: ``id``, ``provider``, ``items``, ``counts``."""
        return [b for b in self._batch_report()["batches"] if provider is None or b["provider"] == provider]


async def _serve(port: int, config: ServerConfig) -> None:
    import signal

    running = _Running(ServerState(config), BatchStore())
    bound = await running.start(port)
    print(f"{_BANNER}http://{HOST}:{bound}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await running.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server in the foreground: ``python -m elspeth_testing.llm_server --port 0 --config '{...}'``."""
    parser = argparse.ArgumentParser(prog="python -m elspeth_testing.llm_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--config", default="{}", help="ServerConfig fields as JSON")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, ServerConfig.model_validate_json(args.config)))


if __name__ == "__main__":
    main()
