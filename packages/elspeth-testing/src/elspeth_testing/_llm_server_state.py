"""What the LLM test server knows: its configuration, the faults it injects, its replies and its request log.

Nothing here touches the network; :mod:`elspeth_testing._llm_server_app` turns it into HTTP.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from elspeth_testing._llm_server_limit import Capacity
from elspeth_testing._llm_server_replies import check_choose, content_for, tokens

__all__ = [
    "CHAT",
    "SAFETY",
    "SECRET_FIELDS",
    "SHIELD",
    "Fault",
    "RecordedRequest",
    "Script",
    "ServerConfig",
    "ServerState",
    "tokens",
]

CHAT = "chat"
SAFETY = "safety"
SHIELD = "shield"

_SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "x-goog-api-key", "ocp-apim-subscription-key", "x-amz-security-token"}
    | {"cookie"}
)
_DEFAULT_CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")
ANSWER_PATHS = ("chat/completions", "/v1/messages", "/converse", ":generateContent")  # wire APIs answering a prompt
SECRET_FIELDS = frozenset({"api_key", "bearer_token", "safety_key"})  # never sent back by `/_elspeth/config`


def _fraction(*parts: object) -> float:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class ServerConfig(BaseModel):
    """How the test server behaves; every field can be changed while it runs.

    Fault rates are shares of chat-completion requests, drawn deterministically from ``seed``, the
    prompt and how many times that prompt has arrived before, so a retried prompt gets a fresh draw
    and a rerun with the same seed injects the same faults.
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0, description="time before each chat reply")
    jitter_ms: float = Field(0.0, ge=0, description="each latency varies by up to this much either way")
    seed: int = Field(0, description="changes every score and every fault draw")
    rate_429: float = Field(0.0, ge=0, le=1, description="share of requests answered 429")
    retry_after_s: float | None = Field(1.0, ge=0, description="Retry-After sent with a 429 (None: no header)")
    max_rps: float | None = Field(None, gt=0, description="enforced capacity: chat calls a second beyond it get 429")
    burst_s: float = Field(0.1, gt=0, description="with max_rps: seconds' worth of calls allowed in one burst")
    rate_500: float = Field(0.0, ge=0, le=1, description="share answered 500")
    rate_503: float = Field(0.0, ge=0, le=1, description="share answered 503")
    rate_hang: float = Field(0.0, ge=0, le=1, description="share never answered until the client gives up")
    rate_drop: float = Field(0.0, ge=0, le=1, description="share whose connection is closed without a reply")
    rate_malformed: float = Field(0.0, ge=0, le=1, description="share answered 200 with a truncated JSON body")
    redirect_location: str = Field(
        "http://127.0.0.1:9/v1/chat/completions", description="the `Location` a scripted 3xx fault (307, 308) names"
    )
    hang_s: float = Field(300.0, gt=0, description="longest a hang lasts before the connection is closed")
    api_key: str | None = Field(None, description="the key required (on Bedrock: the access key id)")
    bearer_token: str | None = Field(None, description="`Bearer` token of Azure (Entra ID) and Vertex AI paths")
    azure_model: str = Field("gpt-4o-mini-2024-07-18", description="model name Azure replies report")
    safety_key: str | None = Field(None, description="Content Safety `Ocp-Apim-Subscription-Key` required")
    safety_markers: dict[str, dict[str, int]] = Field(
        default_factory=lambda: {
            "HATEFUL": {"Hate": 4},
            "VIOLENT": {"Violence": 6},
            "SELFHARM": {"SelfHarm": 4},
            "RACY": {"Sexual": 2},
        },
        description="a word (case-insensitive) in analysed text and the category severities it gives",
    )
    attack_marker: str = Field("IGNORE PREVIOUS INSTRUCTIONS", description="text that Prompt Shields flags")
    refuse_marker: str = Field("FORBIDDEN", description="a prompt holding this gets Azure's content_filter 400")
    models: list[str] = Field(
        default_factory=lambda: ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"], description="what `GET /v1/models` lists"
    )
    choose: Annotated[dict[str, str], AfterValidator(check_choose)] = Field(
        default_factory=dict,
        description="a regex searched in the last user message (dot matches newlines) and the value a json_schema "
        "enum answers with when it matches, the first match winning (a scripted judge); else the enum's first value",
    )
    echo_credentials: bool = Field(
        False,
        description="quote the credential a request presented in every error and reply, as a careless service does "
        "(to test that a client's secrets are scrubbed from what it records)",
    )


@dataclass(frozen=True)
class Fault:
    """What to do with one request instead of (or before) answering it.

    Attributes:
        kind: ``ok``, ``hang``, ``drop``, ``malformed`` (a 200 whose JSON stops halfway), ``empty``
            (a 200 whose JSON is ``{}``, without what the API promises), ``content_filter``, or an
            HTTP status such as ``429``, ``500``, ``503``, ``400``, ``401``, or a redirect such as ``307``
            or ``308`` (with ``Location`` set to the config's ``redirect_location``).
        retry_after: seconds for the ``Retry-After`` header of a 429 (None: the config's default).

    """

    kind: str
    retry_after: float | None = None

    @classmethod
    def parse(cls, spec: str | Fault) -> Fault:
        """``"429"``, ``"429:2.5"`` (with Retry-After 2.5 s), ``"hang"``, ``"drop"``, ``"malformed"``, ``"empty"``."""
        if isinstance(spec, Fault):
            return spec
        kind, _, after = str(spec).partition(":")
        kind = kind.strip().lower()
        if kind not in {"ok", "hang", "drop", "malformed", "empty", "content_filter"} and not kind.isdigit():
            raise ValueError(
                f"unknown fault {spec!r}: use ok, hang, drop, malformed, empty, content_filter or a status"
            )
        return cls(kind, float(after) if after else None)

    @property
    def status(self) -> int | None:
        """The HTTP status this fault answers with, if it is one."""
        return int(self.kind) if self.kind.isdigit() else None


@dataclass
class Script:
    """Faults for the next requests that match, in order; afterwards those requests are served normally.

    Attributes:
        faults: one fault per matching request.
        match: a substring of the prompt (or analysed text); None matches every request.
        path: a substring of the request path; None means chat completions only.

    """

    faults: list[Fault]
    match: str | None = None
    path: str | None = None

    def matches(self, kind: str, path: str, prompt: str) -> bool:
        """Whether this script applies to a request."""
        if not self.faults:
            return False
        if self.path is None and kind != CHAT:
            return False
        if self.path is not None and self.path not in path:
            return False
        return self.match is None or self.match in prompt


@dataclass
class RecordedRequest:
    """One request the server received, as a test sees it (no secret header values).

    Attributes:
        method: the HTTP method.
        path: the request path.
        query: the query parameters.
        headers: the request headers, with credentials replaced by ``"<redacted>"``.
        body: the parsed JSON body (or the raw text if it was not JSON).
        prompt: the last user message of a chat request, or the analysed text.
        t: seconds from the server's start to the request's arrival.
        duration_s: how long the server took over it.
        status: the HTTP status returned, or None when no reply was sent (hang, drop, client gone).
        outcome: ``ok``, ``hang``, ``drop``, ``malformed``, ``empty``, ``client_gone``, or the status as text.
        credential: ``bearer``, ``api-key``, ``x-api-key``, ``x-goog-api-key``, ``subscription-key`` or
            ``sigv4/REGION`` (Bedrock), as presented; None if none.
        credential_ok: whether the credential matched what the server expects.
        peer: the client's ``host:port``; requests sharing it came over one kept-alive connection.

    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    prompt: str
    t: float
    duration_s: float = 0.0
    status: int | None = None
    outcome: str = ""
    credential: str | None = None
    credential_ok: bool = True
    peer: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def redact(headers: Any) -> dict[str, str]:
    """Request headers with every credential value replaced."""
    return {k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user_message(body: Any) -> str:
    """The text of the last user message of a chat request body ("" if there is none)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


class ServerState:
    """Configuration, scripts, per-prompt arrival counts and the request log, shared by all handlers."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.scripts: list[Script] = []
        self.log: list[RecordedRequest] = []
        self.arrivals: Counter[str] = Counter()
        self.seen_systems: set[str] = set()
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.capacity = Capacity()

    def configure(self, **changes: Any) -> None:
        """Change configuration fields (validated); other fields keep their values."""
        with self.lock:
            self.config = ServerConfig.model_validate({**self.config.model_dump(), **changes})

    def add_script(self, script: Script) -> None:
        """Queue scripted faults."""
        with self.lock:
            self.scripts.append(script)

    def reset(self) -> None:
        """Forget requests, scripts and arrival counts (the configuration stays)."""
        with self.lock:
            self.scripts.clear()
            self.log.clear()
            self.arrivals.clear()
            self.seen_systems.clear()

    def record(self, rec: RecordedRequest) -> None:
        """Add a request to the log."""
        with self.lock:
            self.log.append(rec)

    def requests(self) -> list[RecordedRequest]:
        """A copy of the log."""
        with self.lock:
            return list(self.log)

    def choose(self, kind: str, path: str, prompt: str, key: str) -> tuple[Fault, float]:
        """The fault for this request (``ok`` if none) and the latency to wait, in seconds."""
        with self.lock:
            cfg = self.config
            arrival = self.arrivals[key]
            self.arrivals[key] += 1
            for script in self.scripts:
                if script.matches(kind, path, prompt):
                    return script.faults.pop(0), self._latency(cfg, key, arrival) if kind == CHAT else 0.0
            if kind == CHAT and cfg.max_rps and (wait := self.capacity.take(cfg.max_rps, cfg.burst_s)):
                return Fault("429", wait), 0.0
        if kind != CHAT:
            return Fault("ok"), 0.0
        draw = _fraction("fault", cfg.seed, key, arrival)
        fault = Fault("ok")
        for name, rate in (
            ("429", cfg.rate_429),
            ("500", cfg.rate_500),
            ("503", cfg.rate_503),
            ("hang", cfg.rate_hang),
            ("drop", cfg.rate_drop),
            ("malformed", cfg.rate_malformed),
        ):
            if draw < rate:
                fault = Fault(name)
                break
            draw -= rate
        return fault, self._latency(cfg, key, arrival)

    @staticmethod
    def _latency(cfg: ServerConfig, key: str, arrival: int) -> float:
        jitter = (2 * _fraction("jitter", cfg.seed, key, arrival) - 1) * cfg.jitter_ms
        return max(0.0, cfg.latency_ms + jitter) / 1000

    def completion(self, body: dict[str, Any], model: str, note: str = "") -> dict[str, Any]:
        """A chat-completion reply computed from the request alone (plus whether its system prompt was seen).

        ``n`` choices, each scored from the request and its index (choice 0 as with one choice);
        ``note`` is added to every rationale (the ``echo_credentials`` mode uses it).
        """
        messages = body.get("messages") or []
        texts = [_text_of(m.get("content")) for m in messages if isinstance(m, dict)]
        system = "".join(
            _text_of(m.get("content"))
            for m in messages
            if isinstance(m, dict) and m.get("role") in {"system", "developer"}
        )
        user = last_user_message(body)
        rationale = f"Judged {len(user)} characters: {user[:40]}{note}"
        pick = next((value for pattern, value in self.config.choose.items() if re.search(pattern, user, re.S)), None)
        choices: list[dict[str, Any]] = []
        for index in range(body.get("n") or 1):
            extra = (index,) if index else ()
            score = round(_fraction("score", self.config.seed, model, *texts, *extra), 2)
            content, finish = content_for(body, score, rationale, pick)
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            )
        prompt_tokens = sum(tokens(t) + 4 for t in texts) + 3
        cached = 0
        with self.lock:
            if system and system in self.seen_systems and prompt_tokens >= 1024:
                cached = min(prompt_tokens, tokens(system) // 128 * 128)
            self.seen_systems.add(system)
        completion_tokens = sum(tokens(c["message"]["content"]) for c in choices)
        digest = hashlib.sha256(choices[0]["message"]["content"].encode()).hexdigest()[:24]
        return {
            "id": f"chatcmpl-{digest}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_elspeth_test",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        }

    def public_config(self) -> dict[str, Any]:
        """The configuration as ``/_elspeth/config`` shows it: credentials left out, only whether each is set."""
        data = self.config.model_dump()
        for name in SECRET_FIELDS:
            data[name] = None
        data["credentials_set"] = sorted(n for n in SECRET_FIELDS if getattr(self.config, n) is not None)
        return data

    def analyze(self, body: dict[str, Any]) -> dict[str, Any]:
        """A Content Safety ``text:analyze`` reply: severities from the marker words found in the text."""
        text = str(body.get("text", "")).lower()
        wanted = body.get("categories") or list(_DEFAULT_CATEGORIES)
        severity = dict.fromkeys(wanted, 0)
        for marker, levels in self.config.safety_markers.items():
            if marker.lower() in text:
                for category, level in levels.items():
                    if category in severity:
                        severity[category] = max(severity[category], level)
        return {
            "blocklistsMatch": [],
            "categoriesAnalysis": [{"category": c, "severity": s} for c, s in severity.items()],
        }

    def shield(self, body: dict[str, Any]) -> dict[str, Any]:
        """A Prompt Shields ``text:shieldPrompt`` reply: an attack wherever the attack marker appears."""
        marker = self.config.attack_marker.lower()
        documents = body.get("documents") or []
        return {
            "userPromptAnalysis": {"attackDetected": marker in str(body.get("userPrompt", "")).lower()},
            "documentsAnalysis": [{"attackDetected": marker in str(d).lower()} for d in documents],
        }

    def successes_per_prompt(self) -> dict[str, int]:
        """For every chat prompt, how many successful replies the server sent (a duplicate shows as 2+)."""
        counts: Counter[str] = Counter()
        with self.lock:
            for rec in self.log:
                if rec.outcome == "ok" and any(p in rec.path for p in ANSWER_PATHS) and "/batches" not in rec.path:
                    counts[rec.prompt] += 1
        return dict(counts)
