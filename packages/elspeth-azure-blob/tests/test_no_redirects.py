"""Storage requests never follow a redirect: the data and the signed request never reach the redirect's target."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from elspeth import PluginContext, invoke, iterate_rows
from elspeth_azure_blob import AzureBlobDataSource, AzureBlobSink, BlobError
from elspeth_testing import sample_run_result

KEY = "cmVkaXJlY3QtdGVzdC1hY2NvdW50LWtleQ=="


class Server:
    """A server on 127.0.0.1 that counts what it receives and answers every request with ``status``."""

    def __init__(self, status: int, location: str | None = None) -> None:
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                owner.hits.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(status)
                if location is not None:
                    self.send_header("Location", location + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = do_HEAD = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, Server]]:
    monkeypatch.setenv("BLOB_REDIRECT_TEST_KEY", KEY)
    target = Server(200)
    redirector = Server(307, location=target.url)
    yield redirector, target
    redirector.close()
    target.close()


def test_a_read_that_is_redirected_fails_and_the_target_receives_nothing(
    servers: tuple[Server, Server], plugin_context: PluginContext
) -> None:
    redirector, target = servers
    options = {
        "account_url": f"{redirector.url}/acct",
        "account_key_env": "BLOB_REDIRECT_TEST_KEY",
        "container": "c",
        "blob": "in.jsonl",
        "retries": 0,
    }
    source = AzureBlobDataSource(AzureBlobDataSource.Options.model_validate(options))

    async def load() -> None:
        table = await invoke(source.load, plugin_context)
        [row async for row in iterate_rows(table.rows)]

    with pytest.raises(BlobError, match="307"):
        asyncio.run(load())
    assert redirector.hits
    assert target.hits == []


def test_an_upload_that_is_redirected_fails_and_the_target_receives_nothing(
    servers: tuple[Server, Server], plugin_context: PluginContext
) -> None:
    redirector, target = servers
    options = {
        "account_url": f"{redirector.url}/acct",
        "account_key_env": "BLOB_REDIRECT_TEST_KEY",
        "container": "c",
        "create_container": False,
        "retries": 0,
    }
    sink = AzureBlobSink(AzureBlobSink.Options.model_validate(options))
    with pytest.raises(BlobError, match="307"):
        sink.write(sample_run_result(), plugin_context)
    assert redirector.hits
    assert target.hits == []
