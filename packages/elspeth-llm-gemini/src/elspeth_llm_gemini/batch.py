"""Gemini batch mode through ``client.aio.batches`` (and ``files`` for big batches): the SDK side of batching.

Imported only when a run sends through the batch API. Each item is the ``GenerateContentConfig``
``generate`` would send live (:func:`~elspeth_llm_gemini.sdk.generation_config`) with the row's
text, keyed by its ``custom_id`` (inline: ``metadata.key``; a file: the line's ``key``). A batch
whose payload fits ``batch_inline_max_bytes`` goes inline; a bigger one is uploaded as a JSONL
file, each line encoded by the SDK's own inline-request encoder so both forms send the same body.

The job's ``display_name`` is ``TAG|COUNT``: the tag finds a job whose id was lost, the count is
the ``submitted`` figure, which the SDK's ``BatchJob`` does not carry. An item's ``error`` becomes
the :mod:`elspeth.llm_errors` exception its status would raise live; in a job that ``EXPIRED``, an
item answered ``DEADLINE_EXCEEDED`` (or left out) is :attr:`~elspeth.BatchResult.expired`. A job
that failed or was cancelled has no output: its items are missing, which the run counts as expired.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from google.genai import batches as sdk_batches
from google.genai import types

from elspeth import BatchItem, BatchResult, BatchStatus, LLMError, LLMRequestRejected, error_for_status
from elspeth_llm_gemini.sdk import _HINTS, generation_config, to_response, translate_error

__all__ = ["cancel", "find", "item_size", "poll", "results", "submit"]

_TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
_SEPARATOR = "|"


def _inlined(options: Any, item: BatchItem, where: str) -> types.InlinedRequest:
    contents = [types.Content(role="user", parts=[types.Part(text=item.request.user)])]
    config = generation_config(options, item.request, where)
    return types.InlinedRequest(contents=contents, config=config, metadata={"key": item.custom_id})


def item_size(options: Any, item: BatchItem, where: str) -> int:
    """About the bytes the item adds to a batch (its request as JSON, plus room for the key and field names)."""
    request = _inlined(options, item, where)
    return len(json.dumps(request.model_dump(mode="json", by_alias=True, exclude_none=True)).encode()) + 64


def _file_line(sdk: Any, options: Any, item: BatchItem, where: str) -> str:
    encoded = sdk_batches._InlinedRequest_to_mldev(sdk.client._api_client, _inlined(options, item, where), {})
    return json.dumps({"key": item.custom_id, "request": encoded["request"]})


def _translated(exc: Exception, where: str) -> LLMError:
    translated = translate_error(exc, where)
    if translated is None:
        raise exc
    return translated


async def submit(sdk: Any, options: Any, items: Sequence[BatchItem], tag: str, where: str) -> str:
    """Create one batch job (inline, or from an uploaded file when it is big) and return its name."""
    if options.vertexai:
        raise LLMRequestRejected(
            f"{where}: Vertex AI batch prediction reads Cloud Storage or BigQuery, which Elspeth does not write: "
            "use the Gemini API (`vertexai: false`) for batch_api runs"
        )
    config = types.CreateBatchJobConfig(display_name=f"{tag}{_SEPARATOR}{len(items)}")
    size = sum(item_size(options, i, where) for i in items)
    try:
        if size <= options.batch_inline_max_bytes:
            src: Any = [_inlined(options, i, where) for i in items]
        else:
            lines = "".join(_file_line(sdk, options, i, where) + "\n" for i in items).encode()
            upload = {"mime_type": "application/jsonl", "display_name": f"{tag} input"}
            uploaded = await sdk.client.aio.files.upload(file=io.BytesIO(lines), config=upload)
            src = uploaded.name
        job = await sdk.client.aio.batches.create(model=options.model, src=src, config=config)
    except LLMError:
        raise
    except Exception as exc:
        raise _translated(exc, where) from exc
    return str(job.name)


def _submitted(job: Any) -> int:
    _, _, count = str(job.display_name or "").rpartition(_SEPARATOR)
    return int(count) if count.isdigit() else 0


async def poll(sdk: Any, batch_id: str, where: str) -> BatchStatus:
    """The job's ``state``; terminal once it succeeded, failed, was cancelled or expired."""
    try:
        job = await sdk.client.aio.batches.get(name=batch_id)
    except Exception as exc:
        raise _translated(exc, where) from exc
    state = str(getattr(job.state, "value", job.state))
    terminal = state in _TERMINAL
    submitted = _submitted(job)
    inlined = (job.dest.inlined_responses if job.dest is not None else None) or []
    expired = sum(1 for r in inlined if _expired(state, r.error.code if r.error is not None else None))
    done = sum(1 for r in inlined if r.error is None)
    stopped = state in {"JOB_STATE_FAILED", "JOB_STATE_CANCELLED"}
    return BatchStatus(
        batch_id,
        state,
        terminal,
        submitted,
        in_progress=0 if terminal else submitted,
        done=done,
        failed=len(inlined) - done - expired,
        expired=expired,
        message=f"the batch job ended {state.removeprefix('JOB_STATE_')}, without results" if stopped else "",
    )


def _expired(state: str, code: int | None) -> bool:
    """Whether an item's error means it was not reached before the job expired (504 ``DEADLINE_EXCEEDED``)."""
    return state == "JOB_STATE_EXPIRED" and code == 504


def _outcome(key: str, response: Any, error: Any, state: str, model: str, where: str) -> BatchResult:
    if error is not None:
        status = int(error.get("code") or 500)
        if _expired(state, status):
            return BatchResult(key, expired=True)
        word = f" {error['status']}" if error.get("status") else ""
        text = f"{where}: batch item failed: HTTP {status}{word}: {error.get('message') or ''}".rstrip(": ")
        return BatchResult(key, error=error_for_status(text, status, {}, hint=_HINTS.get(status)))
    try:
        return BatchResult(key, response=to_response(response, model, where))
    except LLMError as exc:  # a safety block is an error, as it is live
        return BatchResult(key, error=exc)


async def results(sdk: Any, batch_id: str, model: str, where: str) -> AsyncIterator[BatchResult]:
    """Every item the ended job accounts for: the inlined responses, or the lines of its result file."""
    try:
        job = await sdk.client.aio.batches.get(name=batch_id)
        state = str(getattr(job.state, "value", job.state))
        if job.dest is not None and job.dest.file_name:
            data = await sdk.client.aio.files.download(file=job.dest.file_name)
        else:
            data = None
    except Exception as exc:
        raise _translated(exc, where) from exc
    if data is None:
        for n, inlined in enumerate((job.dest.inlined_responses if job.dest is not None else None) or []):
            key = str((inlined.metadata or {}).get("key", n))
            error = inlined.error.model_dump(mode="json") if inlined.error is not None else None
            yield _outcome(key, inlined.response, error, state, model, where)
        return
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            response = types.GenerateContentResponse.model_validate(entry["response"]) if "response" in entry else None
            yield _outcome(str(entry["key"]), response, entry.get("error"), state, model, where)


async def find(sdk: Any, tag: str, where: str) -> str | None:
    """The newest job whose ``display_name`` carries ``tag``, or None."""
    try:
        async for job in await sdk.client.aio.batches.list():
            if str(job.display_name or "").rpartition(_SEPARATOR)[0] == tag:
                return str(job.name)
    except Exception as exc:
        raise _translated(exc, where) from exc
    return None


async def cancel(sdk: Any, batch_id: str, where: str) -> None:
    """Ask Gemini to cancel the job."""
    try:
        await sdk.client.aio.batches.cancel(name=batch_id)
    except Exception as exc:
        raise _translated(exc, where) from exc
