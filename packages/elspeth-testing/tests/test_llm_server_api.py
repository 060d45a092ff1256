"""The test server is faithful to the OpenAI API or refuses: streams, `n`, `/v1/models`, a config route without keys."""

from __future__ import annotations

import http.client
import json
import time
import urllib.request
from typing import Any

import pytest

from elspeth_testing.llm_fixtures import LLMServerFactory
from elspeth_testing.llm_server import LLMTestServer

KEY = "sk-server-api-test-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


def request(
    server: LLMTestServer, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def chat(server: LLMTestServer, **fields: Any) -> tuple[int, dict[str, str], bytes]:
    body = {"model": "m", "messages": [{"role": "user", "content": "rate this review"}], **fields}
    return request(server, "POST", "/v1/chat/completions", body, AUTH)


def events(payload: bytes) -> list[str]:
    """The ``data:`` values of a server-sent event stream, in order."""
    blocks = payload.decode().split("\n\n")
    assert blocks[-1] == "", "a stream ends with a blank line"
    out = []
    for block in blocks[:-1]:
        assert block.startswith("data: "), block
        out.append(block[len("data: ") :])
    return out


def settled(server: LLMTestServer, count: int) -> list[str]:
    """The outcomes logged once there are ``count`` (a stream is logged just after its last byte)."""
    deadline = time.monotonic() + 5
    while len(server.requests()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return [r.outcome for r in server.requests()]


@pytest.fixture
def server(llm_server_factory: LLMServerFactory) -> LLMTestServer:
    return llm_server_factory(api_key=KEY, hang_s=5)


def test_stream_true_sends_server_sent_chunks_that_add_up_to_the_plain_reply(server: LLMTestServer) -> None:
    _, _, plain = chat(server)
    whole = json.loads(plain)
    status, headers, payload = chat(server, stream=True, stream_options={"include_usage": True})

    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    data = events(payload)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 1
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"
    assert set(finishes[:-1]) == {None}
    *body_chunks, last = chunks
    assert last["choices"] == []
    assert last["usage"] == whole["usage"]
    assert all(c["usage"] is None for c in body_chunks)
    assert settled(server, 2) == ["ok", "ok"]


def test_a_stream_without_include_usage_has_no_usage_chunk(server: LLMTestServer) -> None:
    _, _, payload = chat(server, stream=True)
    chunks = [json.loads(d) for d in events(payload)[:-1]]
    assert all(c["choices"] for c in chunks)
    assert all("usage" not in c for c in chunks)


def test_n_returns_n_choices_and_streams_each(server: LLMTestServer) -> None:
    _, _, one = chat(server)
    _, _, three = chat(server, n=3)
    choices = json.loads(three)["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    assert choices[0] == json.loads(one)["choices"][0]
    assert len({c["message"]["content"] for c in choices}) > 1  # different samples
    usage = json.loads(three)["usage"]
    assert usage["completion_tokens"] > json.loads(one)["usage"]["completion_tokens"]

    _, _, payload = chat(server, n=2, stream=True)
    chunks = [json.loads(d) for d in events(payload)[:-1]]
    for index in (0, 1):
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"][0]["index"] == index
        )
        assert text == choices[index]["message"]["content"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n": 0}, "`n` must be an integer from 1 to 128, got 0"),
        ({"n": 129}, "`n` must be an integer from 1 to 128"),
        ({"n": "2"}, "`n` must be an integer"),
        ({"n": True}, "`n` must be an integer"),
        ({"stream": "yes"}, "`stream` must be a boolean"),
        ({"stream_options": {"include_usage": True}}, "`stream_options` is only allowed when `stream` is true"),
        ({"stream": True, "stream_options": {"include_usage": "y"}}, "`stream_options` must be an object"),
    ],
)
def test_what_the_real_api_refuses_is_refused(server: LLMTestServer, fields: dict[str, Any], message: str) -> None:
    status, _, payload = chat(server, **fields)
    assert status == 400
    assert message in json.loads(payload)["error"]["message"]


@pytest.mark.parametrize("fault", ["429", "500", "503", "401"])
def test_status_faults_come_before_the_stream_as_json_errors(server: LLMTestServer, fault: str) -> None:
    server.script([fault])
    status, headers, payload = chat(server, stream=True)
    assert status == int(fault)
    assert headers["content-type"].startswith("application/json")
    assert json.loads(payload)["error"]["message"]


def test_empty_and_malformed_streams(server: LLMTestServer) -> None:
    server.script(["empty"])
    assert events(chat(server, stream=True)[2]) == ["[DONE]"]
    server.script(["malformed"])
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    connection.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(), headers=AUTH)
    response = connection.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    connection.close()
    partial = cut.value.partial.decode()
    assert "[DONE]" not in partial
    last = partial.rstrip("\n").split("\n\n")[-1]
    with pytest.raises(json.JSONDecodeError):
        json.loads(last[len("data: ") :])


@pytest.mark.parametrize("fault", ["hang", "drop"])
def test_hangs_and_drops_work_on_streams(server: LLMTestServer, fault: str) -> None:
    server.script([fault])
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=0.5)
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    connection.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(), headers=AUTH)
    with pytest.raises(TimeoutError if fault == "hang" else ConnectionError):
        connection.getresponse().read()
    connection.close()


def test_models_are_listed_and_retrieved_with_the_key(llm_server_factory: LLMServerFactory) -> None:
    server = llm_server_factory(api_key=KEY, models=["gpt-a", "gpt-b"])
    status, _, payload = request(server, "GET", "/v1/models", headers=AUTH)
    assert status == 200
    listing = json.loads(payload)
    assert listing["object"] == "list"
    assert [(m["id"], m["object"]) for m in listing["data"]] == [("gpt-a", "model"), ("gpt-b", "model")]
    status, _, payload = request(server, "GET", "/v1/models/gpt-b", headers=AUTH)
    assert (status, json.loads(payload)["id"]) == (200, "gpt-b")
    status, _, payload = request(server, "GET", "/v1/models/gpt-z", headers=AUTH)
    assert status == 404
    assert "gpt-z" in json.loads(payload)["error"]["message"]
    assert request(server, "GET", "/v1/models", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert request(server, "GET", "/v1/models")[0] == 401


@pytest.mark.parametrize("process", [False, True])
def test_the_config_route_never_returns_a_credential(llm_server_factory: LLMServerFactory, process: bool) -> None:
    server = llm_server_factory(
        api_key=KEY, bearer_token="entra-tok-0123456789", safety_key="cs-0123456789", process=process
    )
    server.configure(api_key=KEY + "-2")
    with urllib.request.urlopen(f"{server.url}/_elspeth/config", timeout=10) as reply:
        raw = reply.read().decode()
    assert KEY not in raw
    assert "entra-tok" not in raw
    assert "cs-0123456789" not in raw
    shown = json.loads(raw)
    assert shown["api_key"] is None
    assert shown["credentials_set"] == ["api_key", "bearer_token", "safety_key"]
    assert server.config.api_key == KEY + "-2"  # the test that set it still sees it
    assert server.config.safety_key == "cs-0123456789"


def test_echo_credentials_quotes_the_presented_key_in_errors_and_replies(server: LLMTestServer) -> None:
    server.configure(echo_credentials=True)
    status, _, payload = request(
        server, "POST", "/v1/chat/completions", {"model": "m", "messages": []}, {"Authorization": "Bearer sk-wrong-1"}
    )
    assert status == 401
    assert json.loads(payload)["error"]["message"].endswith("Credential presented: Bearer sk-wrong-1")
    server.script(["429"])
    status, headers, payload = chat(server)
    assert status == 429
    assert "retry-after" in headers
    assert f"Bearer {KEY}" in json.loads(payload)["error"]["message"]
    _, _, payload = chat(server)
    assert f"(sent with Bearer {KEY})" in json.loads(payload)["choices"][0]["message"]["content"]


def _verdict(server: LLMTestServer, prompt: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"winner": {"enum": ["A", "B", "tie"]}, "score": {"type": "integer"}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "response_format": fmt}
    status, _, payload = request(server, "POST", "/v1/chat/completions", body, AUTH)
    assert status == 200, payload
    return dict(json.loads(json.loads(payload)["choices"][0]["message"]["content"]))


def test_choose_scripts_the_enum_a_json_schema_reply_gives(llm_server_factory: LLMServerFactory) -> None:
    server = llm_server_factory(api_key=KEY, choose={r"A:[^\n]*GOOD": "A", r"B:[^\n]*GOOD": "B", "x": "nope"})
    assert _verdict(server, "A: bad\nB: GOOD one")["winner"] == "B"
    assert _verdict(server, "A: GOOD\nB: GOOD too")["winner"] == "A", "the first pattern that matches wins"
    assert _verdict(server, "neither")["winner"] == "A", "no match: the enum's first value"
    assert _verdict(server, "x marks it")["winner"] == "A", "a value outside the enum is never answered"
    assert 0 <= _verdict(server, "neither")["score"] <= 10


def test_choose_refuses_a_pattern_that_does_not_compile(llm_server_factory: LLMServerFactory) -> None:
    with pytest.raises(ValueError, match=r"choose: '\(' is not a regular expression"):
        llm_server_factory(choose={"(": "A"})
