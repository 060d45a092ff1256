"""The LLM test server over raw HTTP (no SDK in between): every fault on every route, Azure's 404, jitter, the log."""

from __future__ import annotations

import http.client
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import pytest

from elspeth_testing.llm_fixtures import LLMServerFactory
from elspeth_testing.llm_server import LLMTestServer, RecordedRequest

KEY = "sk-server-test"
SAFETY_KEY = "cs-server-test"


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    query: str
    headers: dict[str, str]
    text_field: str

    def body(self, prompt: str) -> dict[str, Any]:
        if self.text_field == "messages":
            return {"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": prompt}]}
        if self.text_field == "userPrompt":
            return {"userPrompt": prompt, "documents": []}
        return {"text": prompt}


ROUTES = [
    Route("openai", "/v1/chat/completions", "", {"Authorization": f"Bearer {KEY}"}, "messages"),
    Route("openai-root", "/chat/completions", "", {"Authorization": f"Bearer {KEY}"}, "messages"),
    Route("azure", "/openai/deployments/dep/chat/completions", "?api-version=2024-10-21", {"api-key": KEY}, "messages"),
    Route(
        "analyze",
        "/contentsafety/text:analyze",
        "?api-version=2024-09-01",
        {"Ocp-Apim-Subscription-Key": SAFETY_KEY},
        "text",
    ),
    Route(
        "shield",
        "/contentsafety/text:shieldPrompt",
        "?api-version=2024-09-01",
        {"Ocp-Apim-Subscription-Key": SAFETY_KEY},
        "userPrompt",
    ),
]
AZURE_ROUTES = [r for r in ROUTES if r.query]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_s: float

    def json(self) -> Any:
        return json.loads(self.body)


def post(server: LLMTestServer, path: str, body: Any, headers: dict[str, str], timeout: float = 10) -> Reply:
    """One POST on a fresh connection; a hang raises TimeoutError, a drop a ConnectionError."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    started = time.perf_counter()
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        connection.request("POST", path, body=data, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        payload = response.read()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, payload, time.perf_counter() - started
        )
    finally:
        connection.close()


def send(server: LLMTestServer, route: Route, prompt: str, timeout: float = 10) -> Reply:
    return post(server, route.path + route.query, route.body(prompt), route.headers, timeout)


def settled(server: LLMTestServer, count: int) -> list[RecordedRequest]:
    """The log once it holds ``count`` requests (a hung one is logged when the server sees the client leave)."""
    deadline = time.monotonic() + 5
    while len(server.requests()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return server.requests()


@pytest.fixture
def server(llm_server_factory: LLMServerFactory) -> LLMTestServer:
    return llm_server_factory(api_key=KEY, safety_key=SAFETY_KEY, hang_s=5)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_each_route_answers_normally(server: LLMTestServer, route: Route) -> None:
    reply = send(server, route, "a plain question")
    assert reply.status == 200
    data = reply.json()
    if route.text_field == "messages":
        assert data["choices"][0]["message"]["content"].startswith("Score: ")
        assert data["usage"]["prompt_tokens"] > 0
    elif route.text_field == "text":
        assert {c["category"] for c in data["categoriesAnalysis"]} == {"Hate", "SelfHarm", "Sexual", "Violence"}
    else:
        assert data == {"userPromptAnalysis": {"attackDetected": False}, "documentsAnalysis": []}
    [rec] = server.requests()
    assert (rec.status, rec.outcome, rec.prompt) == (200, "ok", "a plain question")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize(
    ("fault", "status", "retry_after"),
    [("429", 429, "1"), ("429:2.5", 429, "2.5"), ("500", 500, None), ("503", 503, None)],
)
def test_status_faults_on_every_route(
    server: LLMTestServer, route: Route, fault: str, status: int, retry_after: str | None
) -> None:
    server.script([fault], path=route.path)
    reply = send(server, route, "question")
    assert reply.status == status
    assert reply.headers.get("retry-after") == retry_after
    assert reply.json()["error"]["message"]
    assert send(server, route, "question").status == 200, "a scripted fault applies to one request only"
    assert [(r.status, r.outcome) for r in server.requests()] == [(status, str(status)), (200, "ok")]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("fault", ["malformed", "empty"])
def test_body_faults_on_every_route(server: LLMTestServer, route: Route, fault: str) -> None:
    server.script([fault], path=route.path)
    reply = send(server, route, "question")
    assert reply.status == 200
    if fault == "malformed":
        with pytest.raises(json.JSONDecodeError):
            json.loads(reply.body)
        assert reply.body.startswith(b"{")
    else:
        assert reply.json() == {}
    [rec] = server.requests()
    assert (rec.status, rec.outcome) == (200, fault)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_a_drop_closes_the_connection_without_a_reply(server: LLMTestServer, route: Route) -> None:
    server.script(["drop"], path=route.path)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        send(server, route, "question")
    [rec] = settled(server, 1)
    assert (rec.status, rec.outcome) == (None, "drop")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_a_hang_outlasts_the_clients_timeout_and_ends_when_the_client_leaves(
    server: LLMTestServer, route: Route
) -> None:
    server.script(["hang"], path=route.path)
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        send(server, route, "question", timeout=0.3)
    assert time.perf_counter() - started >= 0.3
    [rec] = settled(server, 1)
    assert (rec.status, rec.outcome) == (None, "hang")
    assert rec.duration_s < 4, "the server kept hanging after the client had gone"


@pytest.mark.parametrize("route", AZURE_ROUTES, ids=lambda r: r.name)
def test_azure_paths_without_api_version_are_404(server: LLMTestServer, route: Route) -> None:
    reply = post(server, route.path, route.body("question"), route.headers)
    assert reply.status == 404
    assert "api-version" in reply.json()["error"]["message"]
    [rec] = server.requests()
    assert (rec.status, rec.outcome, rec.query) == (404, "404", {})


def test_the_openai_path_needs_no_api_version_but_a_right_key(server: LLMTestServer) -> None:
    openai = ROUTES[0]
    assert send(server, openai, "q").status == 200
    assert post(server, openai.path, openai.body("q"), {"Authorization": "Bearer wrong"}).status == 401
    assert post(server, openai.path, openai.body("q"), {}).status == 401
    assert [(r.credential, r.credential_ok) for r in server.requests()] == [
        ("bearer", True),
        ("bearer", False),
        (None, False),
    ]


def test_jitter_varies_the_latency_within_its_bounds(llm_server_factory: LLMServerFactory) -> None:
    server = llm_server_factory(api_key=KEY, latency_ms=30, jitter_ms=20)
    for i in range(20):
        assert send(server, ROUTES[0], f"jitter {i}").status == 200
    durations = [r.duration_s for r in server.requests()]
    assert len(durations) == 20
    # each reply waits 30 ms +- 20 ms; the upper bound is generous for a busy machine
    assert all(0.01 - 0.003 <= d < 0.05 + 0.5 for d in durations), durations
    assert max(durations) - min(durations) >= 0.01, f"jitter did not vary the latency: {durations}"
    assert statistics.pstdev(durations) >= 0.003


def test_without_jitter_every_reply_waits_the_latency(llm_server_factory: LLMServerFactory) -> None:
    server = llm_server_factory(api_key=KEY, latency_ms=40)
    for i in range(5):
        assert send(server, ROUTES[0], f"steady {i}").elapsed_s >= 0.04
    assert all(r.duration_s >= 0.04 - 0.003 for r in server.requests())


def test_the_request_log_records_what_was_sent_without_credentials(server: LLMTestServer) -> None:
    azure, analyze = ROUTES[2], ROUTES[3]
    send(server, azure, "first")
    send(server, analyze, "a VIOLENT text")
    post(server, ROUTES[0].path, b"not json at all", ROUTES[0].headers)
    log = server.requests()

    assert [(r.method, r.path, r.status) for r in log] == [
        ("POST", azure.path, 200),
        ("POST", analyze.path, 200),
        ("POST", ROUTES[0].path, 400),
    ]
    first = log[0]
    assert first.query == {"api-version": "2024-10-21"}
    assert first.body == azure.body("first")
    assert (first.prompt, first.credential, first.credential_ok) == ("first", "api-key", True)
    assert first.headers["api-key"] == "<redacted>"
    assert log[1].headers["ocp-apim-subscription-key"] == "<redacted>"
    assert log[1].prompt == "a VIOLENT text"
    assert log[2].body == "not json at all"
    assert KEY not in json.dumps([r.to_dict() for r in log])
    assert SAFETY_KEY not in json.dumps([r.to_dict() for r in log])
    assert log[0].t <= log[1].t <= log[2].t
    assert all(r.peer.startswith("127.0.0.1:") for r in log)
    assert server.requests("contentsafety") == [log[1]]
    assert server.successes_per_prompt() == {"first": 1}
    server.reset()
    assert server.requests() == []


def test_a_process_server_serves_the_same_faults_on_content_safety(llm_server_factory: LLMServerFactory) -> None:
    server = llm_server_factory(safety_key=SAFETY_KEY, process=True)
    server.script(["malformed", "429:3"], path="text:shieldPrompt")
    shield = ROUTES[4]
    with pytest.raises(json.JSONDecodeError):
        json.loads(send(server, shield, "q").body)
    limited = send(server, shield, "q")
    assert (limited.status, limited.headers["retry-after"]) == (429, "3")
    assert [r.outcome for r in server.requests()] == ["malformed", "429"]
