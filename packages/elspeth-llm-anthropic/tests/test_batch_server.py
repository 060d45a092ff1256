"""The test server's Message Batches API, driven through the real ``anthropic`` SDK's ``messages.batches``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from elspeth_testing.llm_server import LLMTestServer


@pytest.fixture
def sdk(keyed_server: LLMTestServer, api_key: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=api_key, base_url=keyed_server.url, max_retries=0) as client:
        yield client


def _request(custom_id: str, user: str, **params: Any) -> dict[str, Any]:
    body = {"model": "claude-test", "max_tokens": 64, "messages": [{"role": "user", "content": user}], **params}
    return {"custom_id": custom_id, "params": body}


def test_a_batch_is_in_progress_then_ended_with_the_live_replies(
    keyed_server: LLMTestServer, sdk: anthropic.Anthropic
) -> None:
    keyed_server.configure_batch_jobs(polls=2)
    batch = sdk.messages.batches.create(requests=[_request(f"row-{n}", f"review {n}") for n in range(3)])
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3
    assert batch.results_url is None
    assert sdk.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    assert sdk.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    ended = sdk.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.ended_at is not None
    assert (ended.request_counts.succeeded, ended.request_counts.processing) == (3, 0)
    results = {r.custom_id: r.result for r in sdk.messages.batches.results(batch.id)}
    assert set(results) == {"row-0", "row-1", "row-2"}
    live = sdk.messages.create(model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "review 1"}])
    one = results["row-1"]
    assert one.type == "succeeded"
    assert one.message.content[0].text == live.content[0].text  # type: ignore[union-attr]
    assert one.message.usage.input_tokens == live.usage.input_tokens
    assert keyed_server.batch_jobs("anthropic")[0]["counts"] == {"succeeded": 3}
    assert len(keyed_server.requests("/v1/messages/batches")) == 1 + 3 + 2  # create, 3 reads, results (+its read)


def test_results_come_out_of_order_and_name_their_custom_id(
    keyed_server: LLMTestServer, sdk: anthropic.Anthropic
) -> None:
    keyed_server.configure_batch_jobs(polls=0)
    batch = sdk.messages.batches.create(requests=[_request(f"r{n}", f"text {n}") for n in range(4)])
    sdk.messages.batches.retrieve(batch.id)
    assert [r.custom_id for r in sdk.messages.batches.results(batch.id)] == ["r3", "r2", "r1", "r0"]


def test_items_error_and_expire_one_by_one(keyed_server: LLMTestServer, sdk: anthropic.Anthropic) -> None:
    keyed_server.configure_batch_jobs(polls=0)
    keyed_server.script(["500"], match="broken")
    keyed_server.script(["hang"], match="slow")
    keyed_server.script(["429"], match="limited")
    requests = [_request("ok", "fine"), _request("e", "broken"), _request("x", "slow"), _request("l", "limited")]
    requests.append(_request("f", "FORBIDDEN words"))
    batch = sdk.messages.batches.create(requests=requests)
    counts = sdk.messages.batches.retrieve(batch.id).request_counts
    assert (counts.succeeded, counts.errored, counts.expired, counts.canceled) == (1, 3, 1, 0)
    results = {r.custom_id: r.result for r in sdk.messages.batches.results(batch.id)}
    assert results["ok"].type == "succeeded"
    assert results["x"].type == "expired"
    errors = {k: results[k].error.error for k in ("e", "l", "f")}  # type: ignore[union-attr]
    assert errors["e"].type == "api_error"
    assert "500" in errors["e"].message
    assert errors["l"].type == "rate_limit_error"
    assert errors["f"].type == "invalid_request_error"
    assert "content filtering" in errors["f"].message
    assert keyed_server.successes_per_prompt() == {"fine": 1}


def test_a_canceled_batch_ends_with_every_item_canceled(keyed_server: LLMTestServer, sdk: anthropic.Anthropic) -> None:
    keyed_server.configure_batch_jobs(polls=5)
    batch = sdk.messages.batches.create(requests=[_request("a", "one"), _request("b", "two")])
    assert sdk.messages.batches.cancel(batch.id).processing_status == "canceling"
    ended = sdk.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.cancel_initiated_at is not None
    assert ended.request_counts.canceled == 2
    assert {r.result.type for r in sdk.messages.batches.results(batch.id)} == {"canceled"}
    assert keyed_server.successes_per_prompt() == {}


@pytest.mark.parametrize(
    ("requests", "field"),
    [
        ([_request("same", "a"), _request("same", "b")], "requests.1.custom_id"),
        ([_request("has space", "a")], "requests.0.custom_id"),
        ([{"custom_id": "a", "params": {"model": "m", "messages": []}}], "requests.0.params.max_tokens"),
        ([], "requests"),
    ],
)
def test_a_bad_batch_is_refused_naming_the_request(
    sdk: anthropic.Anthropic, requests: list[dict[str, Any]], field: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert field in str(caught.value)


def test_a_batch_over_the_limits_is_refused_413(keyed_server: LLMTestServer, sdk: anthropic.Anthropic) -> None:
    keyed_server.configure_batch_jobs(max_requests=2)
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk.messages.batches.create(requests=[_request(f"r{n}", "x") for n in range(3)])
    assert caught.value.status_code == 413
    assert "at most 2 requests" in str(caught.value)
    assert keyed_server.batch_jobs() == []


def test_results_before_the_end_and_unknown_batches_are_refused(
    keyed_server: LLMTestServer, sdk: anthropic.Anthropic
) -> None:
    keyed_server.configure_batch_jobs(polls=3)
    batch = sdk.messages.batches.create(requests=[_request("a", "one")])
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        sdk.messages.batches.results(batch.id)
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.retrieve("msgbatch_nope")


def test_the_batch_calls_take_scripted_faults_and_the_key(
    keyed_server: LLMTestServer, sdk: anthropic.Anthropic
) -> None:
    keyed_server.script(["529"], path="/v1/messages/batches")
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk.messages.batches.create(requests=[_request("a", "one")])
    assert caught.value.status_code == 529
    assert keyed_server.batch_jobs() == []
    with (
        anthropic.Anthropic(api_key="wrong", base_url=keyed_server.url, max_retries=0) as wrong,
        pytest.raises(anthropic.AuthenticationError),
    ):
        wrong.messages.batches.create(requests=[_request("a", "one")])
