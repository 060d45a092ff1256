"""The test server's Gemini batch mode and Files API, driven through the real ``google-genai`` SDK's ``batches``."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from elspeth_testing.llm_server import LLMTestServer

KEY = "AIza-gemini-test-not-a-secret"  # the conftest's, which the keyed server expects


@pytest.fixture
def sdk(keyed_server: LLMTestServer) -> Iterator[genai.Client]:
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=keyed_server.url))
    yield client
    client.close()


def _inlined(key: str, user: str, **config: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": user}]}], "metadata": {"key": key}, "config": config}


def _line(key: str, user: str) -> str:
    return json.dumps({"key": key, "request": {"contents": [{"role": "user", "parts": [{"text": user}]}]}})


def _upload(sdk: genai.Client, lines: list[str]) -> str:
    data = io.BytesIO(("\n".join(lines) + "\n").encode())
    uploaded = sdk.files.upload(file=data, config={"mime_type": "application/jsonl", "display_name": "input"})
    assert uploaded.name is not None
    return uploaded.name


def test_inlined_requests_go_pending_running_succeeded_with_the_live_replies(
    keyed_server: LLMTestServer, sdk: genai.Client
) -> None:
    keyed_server.configure_batch_jobs(polls=1)
    requests = [_inlined(f"row-{n}", f"review {n}", max_output_tokens=64) for n in range(3)]
    job = sdk.batches.create(model="gemini-test", src=requests)  # type: ignore[arg-type]
    assert job.state == types.JobState.JOB_STATE_PENDING
    assert job.name is not None
    assert sdk.batches.get(name=job.name).state == types.JobState.JOB_STATE_RUNNING
    done = sdk.batches.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert done.end_time is not None
    assert done.dest is not None
    assert done.dest.inlined_responses is not None
    replies = done.dest.inlined_responses
    assert [r.metadata for r in replies] == [{"key": f"row-{n}"} for n in range(3)]
    live = sdk.models.generate_content(model="gemini-test", contents="review 1", config={"max_output_tokens": 64})
    assert replies[1].response is not None
    assert replies[1].response.text == live.text
    assert replies[1].response.usage_metadata == live.usage_metadata
    assert keyed_server.batch_jobs("gemini")[0]["counts"] == {"succeeded": 3}


def test_a_file_batch_answers_a_result_file_keyed_by_line(keyed_server: LLMTestServer, sdk: genai.Client) -> None:
    keyed_server.configure_batch_jobs(polls=0)
    name = _upload(sdk, [_line("a", "first"), _line("b", "second")])
    job = sdk.batches.create(model="gemini-test", src=name)
    assert job.name is not None
    done = sdk.batches.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert done.dest is not None
    assert done.dest.file_name is not None
    lines = [json.loads(x) for x in sdk.files.download(file=done.dest.file_name).decode().splitlines()]
    assert [x["key"] for x in lines] == ["b", "a"]  # not in the input's order
    assert lines[1]["response"]["candidates"][0]["content"]["parts"][0]["text"].startswith("Score: ")


def test_item_errors_refusals_and_expiry(keyed_server: LLMTestServer, sdk: genai.Client) -> None:
    keyed_server.configure_batch_jobs(polls=0)
    keyed_server.script(["503"], match="broken")
    keyed_server.script(["hang"], match="slow")
    requests = [_inlined("ok", "fine"), _inlined("e", "broken"), _inlined("x", "slow"), _inlined("f", "FORBIDDEN")]
    job = sdk.batches.create(model="gemini-test", src=requests)  # type: ignore[arg-type]
    assert job.name is not None
    done = sdk.batches.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_EXPIRED  # one item never finished
    assert done.dest is not None
    assert done.dest.inlined_responses is not None
    ok, broken, slow, forbidden = done.dest.inlined_responses
    assert ok.response is not None
    assert ok.response.text
    assert broken.error is not None
    assert broken.error.code == 503
    assert broken.error.message
    assert slow.error is not None
    assert slow.error.code == 504
    assert forbidden.response is not None
    assert forbidden.response.prompt_feedback is not None
    assert forbidden.response.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert keyed_server.successes_per_prompt() == {"fine": 1}


def test_a_bad_input_line_fails_the_job(keyed_server: LLMTestServer, sdk: genai.Client) -> None:
    keyed_server.configure_batch_jobs(polls=0)
    job = sdk.batches.create(model="gemini-test", src=_upload(sdk, [_line("a", "first"), "not json"]))
    assert job.name is not None
    assert sdk.batches.get(name=job.name).state == types.JobState.JOB_STATE_FAILED


def test_a_cancelled_job_has_no_output(keyed_server: LLMTestServer, sdk: genai.Client) -> None:
    keyed_server.configure_batch_jobs(polls=5)
    job = sdk.batches.create(model="gemini-test", src=[_inlined("a", "one")])  # type: ignore[arg-type]
    assert job.name is not None
    sdk.batches.cancel(name=job.name)
    done = sdk.batches.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_CANCELLED
    assert done.dest is None
    assert keyed_server.successes_per_prompt() == {}


def test_refusals_name_the_place(keyed_server: LLMTestServer, sdk: genai.Client) -> None:
    keyed_server.configure_batch_jobs(max_requests=1)
    with pytest.raises(errors.ClientError, match="at most 1 requests"):
        sdk.batches.create(model="gemini-test", src=[_inlined("a", "one"), _inlined("b", "two")])  # type: ignore[arg-type]
    with pytest.raises(errors.ClientError, match="no file"):
        sdk.batches.create(model="gemini-test", src="files/missing")
    url = f"{keyed_server.url}/v1beta/models/gemini-test:batchGenerateContent"  # the SDK refuses empty contents
    body = {"batch": {"inputConfig": {"requests": {"requests": [{"request": {"contents": []}}]}}}}
    refused = httpx.post(url, headers={"x-goog-api-key": KEY}, json=body)
    assert refused.status_code == 400
    assert "requests[0].request.contents" in refused.text
    with pytest.raises(errors.ClientError) as caught:
        sdk.batches.get(name="batches/nope")
    assert caught.value.code == 404
    wrong = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=keyed_server.url))
    with pytest.raises(errors.ClientError):
        wrong.batches.create(model="gemini-test", src=[_inlined("a", "one")])  # type: ignore[arg-type]
    wrong.close()
    assert keyed_server.batch_jobs() == []


def test_the_batch_calls_take_scripted_faults(keyed_server: LLMTestServer, sdk: genai.Client) -> None:
    keyed_server.script(["503"], path=":batchGenerateContent")
    with pytest.raises(errors.ServerError) as caught:
        sdk.batches.create(model="gemini-test", src=[_inlined("a", "one")])  # type: ignore[arg-type]
    assert caught.value.code == 503
    assert keyed_server.batch_jobs() == []
