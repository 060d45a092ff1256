"""The LLM test server's HTTP side: an aiohttp application over a :class:`ServerState`.

Routes:
    ``POST /v1/chat/completions`` (and ``/chat/completions``): OpenAI chat completions, ``Authorization: Bearer``;
    ``n`` choices, and ``stream: true`` as server-sent events (with ``stream_options.include_usage``).
    ``GET /v1/models`` (and ``/v1/models/{model}``): the configured ``models``.
    ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``: Azure OpenAI, ``api-key`` or
    ``Authorization: Bearer`` (an Entra ID token).
    ``POST /contentsafety/text:analyze`` and ``/contentsafety/text:shieldPrompt`` (``?api-version=...``):
    Azure AI Content Safety, ``Ocp-Apim-Subscription-Key``.
    ``POST /v1/messages``: Anthropic Messages, ``x-api-key`` (:mod:`elspeth_testing._llm_server_anthropic`).
    ``POST /model/{modelId}/converse``: Amazon Bedrock Converse, SigV4 (:mod:`elspeth_testing._llm_server_bedrock`).
    ``POST /{version}/models/{model}:generateContent`` and the Vertex AI ``projects/.../locations/...`` form:
    Gemini (:mod:`elspeth_testing._llm_server_gemini`); ``POST /token``: Google's OAuth token exchange.
    ``/v1/files``, ``/v1/batches`` and Azure's ``/openai/files``, ``/openai/batches``: the Files and Batches
    APIs (:mod:`elspeth_testing._llm_server_batches`).
    ``/v1/messages/batches...``: Anthropic Message Batches (:mod:`elspeth_testing._llm_server_anthropic_batches`);
    ``models/{model}:batchGenerateContent``, ``batches/{id}``: Gemini batch mode, with the Files API's upload
    and download (:mod:`elspeth_testing._llm_server_gemini_batches`, :mod:`elspeth_testing._llm_server_gemini_files`).
    ``/_elspeth/...``: control routes (log, config, scripts, batches, batch-jobs, reset) for a server in another
    process; the
    config route never sends back a credential.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from elspeth_testing._llm_server_anthropic import messages_route
from elspeth_testing._llm_server_anthropic_batches import (
    batch_cancel_route,
    batch_create_route,
    batch_get_route,
    batch_results_route,
)
from elspeth_testing._llm_server_batch_jobs import BATCHES, BatchStore
from elspeth_testing._llm_server_batches import _file, _list, _retrieve, add_batch_routes
from elspeth_testing._llm_server_bedrock import converse_route
from elspeth_testing._llm_server_gemini import generate_route, token_route
from elspeth_testing._llm_server_gemini_batches import batch_call_route, batch_list_route, models_route
from elspeth_testing._llm_server_gemini_batches import batch_get_route as gemini_batch_get_route
from elspeth_testing._llm_server_gemini_files import download_route, upload_route
from elspeth_testing._llm_server_http import (
    STATE,
    STOPPING,
    _credential,
    _echoed,
    _error,
    _faulted,
    _gone,
    _new_record,
    _presented,
    _read,
    _truncated,
    refused_credential,
)
from elspeth_testing._llm_server_replies import DONE, check_stream_request, chunks, sse
from elspeth_testing._llm_server_state import (
    CHAT,
    SAFETY,
    SHIELD,
    Fault,
    RecordedRequest,
    Script,
    ServerState,
    last_user_message,
)

__all__ = ["build_app"]


async def _stream(
    request: web.Request, rec: RecordedRequest, reply: Any, body: Any, fault: Fault
) -> web.StreamResponse:
    """``reply`` as server-sent events; ``empty`` sends only ``[DONE]``, ``malformed`` stops mid-chunk and hangs up."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    items = [] if fault.kind == "empty" else chunks(reply, include_usage)
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    rec.status = 200
    if fault.kind == "malformed":
        half = len(items) // 2
        for item in items[:half]:
            await response.write(sse(item))
        await response.write(sse(items[half])[:24])
        if request.transport is not None:
            request.transport.close()
        return response
    for item in items:
        await response.write(sse(item))
    await response.write(DONE)
    await response.write_eof()
    return response


async def _chat(request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
    state = request.app[STATE]
    deployment = request.match_info.get("deployment")
    azure = deployment is not None
    refused_answer = refused_credential(request, rec, azure)
    if refused_answer is not None:
        return refused_answer
    body = await _read(request, rec)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not (azure or body.get("model")):
        rec.status, rec.outcome = 400, "400"
        return _error(400, "The body must be JSON with `messages` (and `model`).", "invalid_request")
    refused = check_stream_request(body)
    if refused is not None:
        rec.status, rec.outcome = 400, "400"
        return _error(400, refused, "invalid_request")
    stream = bool(body.get("stream"))
    rec.prompt = last_user_message(body)
    model = state.config.azure_model if azure else str(body["model"])
    key = json.dumps(body.get("messages"), sort_keys=True)
    fault, latency = state.choose(CHAT, request.path, rec.prompt, key)
    if fault.kind not in {"429", "drop", "hang"} and latency:
        await asyncio.sleep(latency)
    answer = await _faulted(request, rec, fault, state, stream)
    if answer is not None:
        return answer
    cfg = state.config
    if cfg.refuse_marker and cfg.refuse_marker in rec.prompt:
        rec.status, rec.outcome = 400, "content_filter"
        return _error(400, "The prompt was filtered by the content management policy (test server).", "content_filter")
    reply = state.completion(body, model, f" (sent with {_presented(request)})" if cfg.echo_credentials else "")
    if stream:
        return await _stream(request, rec, reply, body, fault)
    if fault.kind == "malformed":
        rec.status = 200
        return _truncated(reply)
    if _gone(request):
        rec.outcome = "client_gone"
        return web.Response(status=204)
    rec.status = 200
    return web.json_response(reply)


async def _safety(request: web.Request, rec: RecordedRequest, kind: str) -> web.Response:
    state = request.app[STATE]
    key = request.headers.get("Ocp-Apim-Subscription-Key")
    rec.credential = "subscription-key" if key is not None else None
    rec.credential_ok = key is not None and (state.config.safety_key is None or key == state.config.safety_key)
    if "api-version" not in request.query:
        rec.status, rec.outcome = 404, "404"
        return _error(404, "Resource not found: api-version is required", "404")
    if not rec.credential_ok:
        rec.status, rec.outcome = 401, "401"
        return _error(401, "Access denied due to invalid subscription key (test server).", "401")
    body = await _read(request, rec)
    text_field = "text" if kind == SAFETY else "userPrompt"
    if not isinstance(body, dict) or not isinstance(body.get(text_field), str):
        rec.status, rec.outcome = 400, "400"
        return _error(400, f"The body must be JSON with `{text_field}`.", "InvalidRequestBody")
    rec.prompt = body[text_field]
    if len(rec.prompt) > 10_000:
        rec.status, rec.outcome = 400, "400"
        return _error(400, "Text exceeds 10,000 characters.", "InvalidRequestBody")
    fault, _ = state.choose(kind, request.path, rec.prompt, f"{kind}:{rec.prompt}")
    answer = await _faulted(request, rec, fault, state)
    if answer is not None:
        return answer
    rec.status = 200
    reply = state.analyze(body) if kind == SAFETY else state.shield(body)
    if fault.kind == "malformed":
        return _truncated(reply)
    return web.json_response(reply)


def _recorded(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        rec = _new_record(request, state)
        started = time.monotonic()
        try:
            response: web.StreamResponse = await handler(request, rec)
            if state.config.echo_credentials:
                response = _echoed(response, request)
        finally:
            rec.duration_s = round(time.monotonic() - started, 6)
            if rec.outcome in {"hang", "drop", "client_gone"}:
                rec.status = None
            state.record(rec)
        return response

    return wrapped


async def _chat_route(request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
    return await _chat(request, rec)


async def _analyze_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    return await _safety(request, rec, SAFETY)


async def _shield_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    return await _safety(request, rec, SHIELD)


async def _models_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    state = request.app[STATE]
    rec.credential, rec.credential_ok = _credential(request, state, azure=False)
    if not rec.credential_ok:
        rec.status, rec.outcome = 401, "401"
        return _error(401, "Incorrect API key provided (test server).", "invalid_api_key")
    created = 1_700_000_000
    listed = [{"id": m, "object": "model", "created": created, "owned_by": "elspeth-test"} for m in state.config.models]
    rec.status, rec.outcome = 200, "ok"
    wanted = request.match_info.get("model")
    if wanted is None:
        return web.json_response({"object": "list", "data": listed})
    for model in listed:
        if model["id"] == wanted:
            return web.json_response(model)
    rec.status, rec.outcome = 404, "404"
    return _error(404, f"The model `{wanted}` does not exist (test server).", "model_not_found")


async def _control_requests(request: web.Request) -> web.Response:
    return web.json_response([r.to_dict() for r in request.app[STATE].requests()])


async def _control_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        try:
            state.configure(**(await request.json()))
        except ValueError as exc:
            return _error(400, str(exc))
    return web.json_response(state.public_config())


async def _control_script(request: web.Request) -> web.Response:
    data = await request.json()
    try:
        faults = [Fault.parse(f) for f in data["faults"]]
    except (KeyError, TypeError, ValueError) as exc:
        return _error(400, f"a script needs `faults`, a list of fault names: {exc}")
    request.app[STATE].add_script(Script(faults, data.get("match"), data.get("path")))
    return web.json_response({"queued": len(faults)})


async def _control_batches(request: web.Request) -> web.Response:
    store = request.app[BATCHES]
    if request.method == "POST":
        try:
            store.configure(**(await request.json()))
        except ValueError as exc:
            return _error(400, str(exc))
    answered = dict(store.answered)
    return web.json_response(
        {"settings": store.settings.model_dump(), "batches": store.summaries(), "answered": answered}
    )


async def _control_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    request.app[BATCHES].clear()
    return web.json_response({"reset": True})


def _google_or(google: Any, other: Any) -> Any:
    """A route shared by Gemini and OpenAI paths: Gemini's when the request carries a Google API key."""

    async def route(request: web.Request) -> web.StreamResponse:
        wanted = google if "x-goog-api-key" in request.headers or "key" in request.query else other
        response: web.StreamResponse = await wanted(request)
        return response

    return route


def _add_shared_v1_routes(app: web.Application) -> None:
    """``/v1/batches``, ``/v1/batches/{id}`` and ``/v1/files/{id}`` are both the OpenAI and the Gemini API's paths."""
    app.router.add_get("/v1/batches", _google_or(_recorded(batch_list_route), _recorded(_list)))
    app.router.add_get("/v1/batches/{batch_id}", _google_or(_recorded(gemini_batch_get_route), _recorded(_retrieve)))
    app.router.add_get("/v1/files/{file_id}", _google_or(_recorded(download_route), _recorded(_file)))


def build_app(state: ServerState, batches: BatchStore | None = None) -> web.Application:
    """The aiohttp application serving ``state`` (and the batch jobs in ``batches``)."""
    app = web.Application(client_max_size=300 * 1024 * 1024)  # a batch may be 256 MB
    app[STATE] = state
    app[BATCHES] = batches if batches is not None else BatchStore()
    app[STOPPING] = asyncio.Event()
    chat = _recorded(_chat_route)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", chat)
    models = _recorded(_models_route)
    for prefix in ("/v1", ""):
        app.router.add_get(f"{prefix}/models", models)
        app.router.add_get(f"{prefix}/models/{{model}}", models)
    app.router.add_post("/v1/messages", _recorded(messages_route))
    app.router.add_post("/v1/messages/batches", _recorded(batch_create_route))
    app.router.add_get("/v1/messages/batches/{batch_id}", _recorded(batch_get_route))
    app.router.add_get("/v1/messages/batches/{batch_id}/results", _recorded(batch_results_route))
    app.router.add_post("/v1/messages/batches/{batch_id}/cancel", _recorded(batch_cancel_route))
    app.router.add_post("/model/{model_id}/converse", _recorded(converse_route))
    _add_shared_v1_routes(app)
    add_batch_routes(app, _recorded)  # OpenAI's and Azure's, before Gemini's `/{version}/batches` could take them
    gemini = _recorded(generate_route)
    app.router.add_post("/{version}/models/{call}", _recorded(models_route))
    app.router.add_get("/{version}/batches", _recorded(batch_list_route))
    app.router.add_get("/{version}/batches/{batch_id}", _recorded(gemini_batch_get_route))
    app.router.add_post("/{version}/batches/{call}", _recorded(batch_call_route))
    app.router.add_post("/upload/{version}/files", _recorded(upload_route))
    app.router.add_get("/{version}/files/{file_id}", _recorded(download_route))
    app.router.add_post("/token", _recorded(token_route))
    app.router.add_post("/{version}/projects/{project}/locations/{location}/publishers/google/models/{call}", gemini)
    app.router.add_post("/contentsafety/text:analyze", _recorded(_analyze_route))
    app.router.add_post("/contentsafety/text:shieldPrompt", _recorded(_shield_route))
    app.router.add_get("/_elspeth/requests", _control_requests)
    app.router.add_route("*", "/_elspeth/config", _control_config)
    app.router.add_post("/_elspeth/script", _control_script)
    app.router.add_route("*", "/_elspeth/batch-jobs", _control_batches)
    app.router.add_post("/_elspeth/reset", _control_reset)
    return app


def stopping_event(app: web.Application) -> asyncio.Event:
    """The event that wakes hanging handlers when the server stops."""
    return app[STOPPING]
