"""The viewer's HTTP server: the page and its script from this package, and a JSON API over the store.

The standard library's threading HTTP server (core depends on no web framework), bound to 127.0.0.1
only. Each request opens the store read-only for itself: SQLite connections are cheap, and a request
then never sees another's half-read cursor. Routes (all ``GET``)::

    /                                  the page (static/index.html), then /static/app.js and app.css
    /api/runs                          every run
    /api/runs/RUN?counts=0             one run with its groups, metadata, figures and comparisons
    /api/runs/RUN/counts               each group's finished and failed rows
    /api/runs/RUN/rows?group=&status=&q=&offset=&limit=&count=0    a page of rows, groups side by side
    /api/runs/RUN/rows/ROW             one row in full
    /api/diff?a=RUN&b=RUN&changed=1&offset=&limit=         a page of two runs' rows matched

Bad parameters are 400, an unknown run or row 404, each with ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from elspeth_view import queries

__all__ = ["make_server", "serve"]

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
_STATIC = ("index.html", "app.js", "app.css")


class _BadRequest(ValueError):
    pass


def _number(query: dict[str, list[str]], name: str, default: int) -> int:
    text = query.get(name, [str(default)])[0]
    if not text.isdigit():
        raise _BadRequest(f"{name} must be a whole number, not {text!r}")
    return int(text)


def _api(store: Path, parts: list[str], query: dict[str, list[str]], memo: queries.Memo) -> Any:
    """The JSON answer to an API path (its parts after ``/api``)."""
    one = {k: v[0] for k, v in query.items()}
    page = {"offset": _number(query, "offset", 0), "limit": _number(query, "limit", 50)}
    conn = queries.open_store(store)
    try:
        match parts:
            case ["runs"]:
                return queries.list_runs(conn)
            case ["runs", run_id]:
                return queries.run_detail(conn, run_id, memo, counts=one.get("counts") != "0")
            case ["runs", run_id, "counts"]:
                queries.check_run(conn, run_id)
                return queries.group_counts(conn, run_id, memo)
            case ["runs", run_id, "rows"]:
                queries.check_run(conn, run_id)
                status, search, group = one.get("status", ""), one.get("q", ""), one.get("group") or None
                count = one.get("count") != "0"
                return queries.rows_page(
                    conn, run_id, group=group, status=status, search=search, memo=memo, count=count, **page
                )
            case ["runs", run_id, "rows", row_id]:
                return queries.row_detail(conn, run_id, row_id)
            case ["diff"] if "a" in one and "b" in one:
                changed = one.get("changed", "1") != "0"
                return queries.diff_page(conn, one["a"], one["b"], changed_only=changed, **page)
        raise queries.StoreUnreadable(f"no such API path /api/{'/'.join(parts)}")
    finally:
        conn.close()


def _handler(store: Path) -> type[BaseHTTPRequestHandler]:
    memo: queries.Memo = {}  # row counts of finished runs, kept while the server runs

    class Handler(BaseHTTPRequestHandler):
        server_version = "elspeth-view"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            parts = [unquote(p) for p in url.path.split("/") if p]
            if parts[:1] == ["api"]:
                self._answer_api(parts[1:], parse_qs(url.query))
            elif not parts or (len(parts) == 2 and parts[0] == "static" and parts[1] in _STATIC):
                name = parts[1] if parts else "index.html"
                body = resources.files("elspeth_view").joinpath("static", name).read_bytes()
                self._send(200, _TYPES[Path(name).suffix], body)
            else:
                self._send(404, "text/plain", b"not found")

        def _answer_api(self, parts: list[str], query: dict[str, list[str]]) -> None:
            try:
                code, answer = 200, _api(store, parts, query, memo)
            except (_BadRequest, ValueError) as exc:
                code, answer = 400, {"error": str(exc)}
            except queries.StoreUnreadable as exc:
                code, answer = 404, {"error": str(exc)}
            self._send(code, "application/json", json.dumps(answer, default=str).encode())

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request on stderr would drown the command's own output

    return Handler


def make_server(store: Path, port: int = 0) -> ThreadingHTTPServer:
    """A server for ``store`` on 127.0.0.1:``port`` (0: a free port), not yet serving; the store is checked first."""
    queries.open_store(store).close()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(store))
    server.daemon_threads = True
    return server


def serve(store: Path, port: int = 0, ready: Callable[[str], None] = print) -> None:
    """Serve ``store`` until interrupted; ``ready`` is told the address once the server listens."""
    server = make_server(store, port)
    ready(f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
