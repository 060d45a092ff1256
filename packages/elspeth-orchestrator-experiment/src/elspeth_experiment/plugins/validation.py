"""Validators: ``regex_match``, ``json`` (optionally against a JSON Schema) and ``llm_guard`` (a second LLM judges).

A validator raises :class:`elspeth.ValidationFailed`; with the orchestrator's ``validation_retries``
the LLM is asked again, and a row still rejected is recorded as a failure with every attempt.
``llm_guard`` hands its judge's responses back to the runner (returned when it accepts, carried by
:class:`~elspeth_experiment.protocols.ValidationFailedWithCalls` when it rejects), so the judge's
tokens, latency and cost are part of the row's metrics.
"""

from __future__ import annotations

import json
import re
from functools import reduce
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elspeth import LLMRequest, LLMResponse, PluginRef, Row, ValidationFailed, inline
from elspeth_experiment.protocols import ValidationFailedWithCalls

if TYPE_CHECKING:
    from elspeth import LLMPipeline, PromptTemplate
    from elspeth_experiment.protocols import SetupContext

__all__ = ["JsonValidator", "LlmGuard", "RegexMatch"]

_FLAGS = {"IGNORECASE": re.IGNORECASE, "MULTILINE": re.MULTILINE, "DOTALL": re.DOTALL, "VERBOSE": re.VERBOSE}


class RegexMatch:
    """Accepts a response only when its content matches a regular expression."""

    name = "regex_match"

    class Options(BaseModel):
        """Options of ``regex_match``."""

        model_config = ConfigDict(extra="forbid")

        pattern: str = Field(description="the regular expression (Python syntax)")
        flags: list[str] = Field(
            default_factory=list, description=f"regex flags by name: {', '.join(_FLAGS)} (a '|'-joined string works)"
        )
        mode: str = Field(
            "fullmatch", pattern="^(fullmatch|search)$", description="fullmatch: the whole content; search: anywhere"
        )

        @field_validator("flags", mode="before")
        @classmethod
        def _split(cls, value: Any) -> Any:
            if isinstance(value, str):
                return [part.strip() for part in value.split("|") if part.strip()]
            return value

        @field_validator("flags")
        @classmethod
        def _known(cls, value: list[str]) -> list[str]:
            unknown = [f for f in value if f.upper() not in _FLAGS]
            if unknown:
                raise ValueError(f"unknown regex flag(s) {', '.join(unknown)}; use {', '.join(_FLAGS)}")
            return [f.upper() for f in value]

    def __init__(self, options: Options) -> None:
        self.options = options
        flags = reduce(lambda acc, name: acc | _FLAGS[name], options.flags, re.NOFLAG)
        try:
            self._pattern = re.compile(options.pattern, flags)
        except re.error as exc:
            raise ValueError(f"pattern is not a valid regular expression: {exc}") from None

    @inline
    def validate(self, response: LLMResponse, row: Row) -> None:
        """Raise unless the content matches."""
        match = getattr(self._pattern, self.options.mode)(response.content)
        if match is None:
            how = "match" if self.options.mode == "fullmatch" else "contain a match for"
            raise ValidationFailed(f"response does not {how} /{self.options.pattern}/")


class JsonValidator:
    """Accepts a response only when its content is JSON (optionally an object, or valid against a JSON Schema)."""

    name = "json"

    class Options(BaseModel):
        """Options of ``json``."""

        model_config = ConfigDict(extra="forbid")

        ensure_object: bool = Field(False, description="the JSON must be an object ({...})")
        schema_: dict[str, Any] | None = Field(
            None, alias="schema", description="a JSON Schema the parsed content must satisfy (checked with jsonschema)"
        )

    def __init__(self, options: Options) -> None:
        self.options = options
        self._validator: Any = None
        if options.schema_ is not None:
            import jsonschema  # type: ignore[import-untyped, unused-ignore]

            cls = jsonschema.validators.validator_for(options.schema_)
            try:
                cls.check_schema(options.schema_)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"schema is not a valid JSON Schema: {exc.message}") from None
            self._validator = cls(options.schema_)

    @inline
    def validate(self, response: LLMResponse, row: Row) -> None:
        """Raise unless the content parses (and fits the schema)."""
        try:
            value = json.loads(response.content)
        except ValueError as exc:
            raise ValidationFailed(f"response is not JSON: {exc}") from None
        if self.options.ensure_object and not isinstance(value, dict):
            raise ValidationFailed(f"response is JSON but not an object (got {type(value).__name__})")
        if self._validator is not None:
            error = next(iter(sorted(self._validator.iter_errors(value), key=lambda e: list(e.path))), None)
            if error is not None:
                where = "/".join(str(p) for p in error.path) or "(root)"
                raise ValidationFailed(f"response breaks the schema at {where}: {error.message}")


DEFAULT_GUARD_SYSTEM = "You check whether a response meets the rules. Answer with one word: VALID or INVALID."
DEFAULT_GUARD_USER = "Rules: the response must answer the request and stay polite.\n\nResponse:\n{{ response }}"


class LlmGuard:
    """Asks a second LLM whether a response is acceptable; it must answer with the valid or invalid token."""

    name = "llm_guard"

    class Options(BaseModel):
        """Options of ``llm_guard``."""

        model_config = ConfigDict(extra="forbid")

        llm: PluginRef = Field(description="the judging LLM client: {plugin, options}, shares the run's middleware")
        system_prompt: str = Field(DEFAULT_GUARD_SYSTEM, description="the judge's system prompt")
        user_prompt: str = Field(
            DEFAULT_GUARD_USER,
            description="the judge's user prompt template; fields: the row's columns and `response` (the reply text)",
        )
        valid_token: str = Field("VALID", min_length=1, description="the judge's word for an acceptable response")
        invalid_token: str = Field("INVALID", min_length=1, description="the judge's word for a rejected response")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._judge: LLMPipeline | None = None
        self._template: PromptTemplate | None = None

    def setup(self, setup: SetupContext) -> None:
        """Build the judging client and check the prompt template against the datasource's columns."""
        from elspeth import check_template

        loc = (*setup.loc, "options")
        self._judge = setup.ctx.build_llm(self.options.llm, None, (*loc, "llm"), setup.checker)
        self._template = check_template(
            self.options.user_prompt, (*loc, "user_prompt"), setup.checker, setup.columns, ("response",)
        )

    def _verdict(self, text: str) -> bool | None:
        line = text.strip().splitlines()[0].strip() if text.strip() else ""

        def said(token: str) -> bool:
            return re.search(rf"(?<![A-Za-z]){re.escape(token)}(?![A-Za-z])", line, re.IGNORECASE) is not None

        # the invalid token is checked first: "INVALID" contains "VALID"
        if said(self.options.invalid_token):
            return False
        if said(self.options.valid_token):
            return True
        return None

    async def validate(self, response: LLMResponse, row: Row) -> list[LLMResponse]:
        """Ask the judge; raise unless its first line says the valid token.

        Returns:
            the judge's response, so the runner adds its tokens and cost to the row's.

        Raises:
            ValidationFailedWithCalls: the judge rejected the response or answered neither token; it
                carries the judge's response for the same reason.
        """
        if self._judge is None or self._template is None:
            raise RuntimeError("llm_guard was not set up: it runs only inside the experiment orchestrator")
        user = self._template.render({**row.data, "response": response.content})
        request = LLMRequest(
            system=self.options.system_prompt, user=user, metadata={"row_id": row.id, "purpose": "llm_guard"}
        )
        verdict = await self._judge.call(request)
        decision = self._verdict(verdict.content)
        if decision is None:
            raise ValidationFailedWithCalls(
                f"llm_guard: unexpected verdict {verdict.content.strip()[:80]!r} "
                f"(expected {self.options.valid_token} or {self.options.invalid_token})",
                [verdict],
            )
        if not decision:
            reason = f"llm_guard judged the response invalid: {verdict.content.strip()[:200]}"
            raise ValidationFailedWithCalls(reason, [verdict])
        return [verdict]
