"""The ``pii_redaction`` processor: masks or pseudonymises personal data in text columns."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from elspeth import PluginError, inline, register_secret
from elspeth_processors._common import chosen_columns
from elspeth_processors.pii import KINDS, find

__all__ = ["PiiRedaction"]

Kind = Literal["email", "iban", "card", "ip", "us_ssn", "uk_nino", "au_abn", "au_tfn", "phone"]


class PiiRedaction:
    """Masks or pseudonymises emails, phones, cards, IBANs, IPs and national ids (checksums checked)."""

    name = "pii_redaction"

    class Options(BaseModel):
        """Options of ``pii_redaction``."""

        model_config = ConfigDict(extra="forbid")

        columns: list[str] | None = Field(None, description="columns to redact (default: every string column)")
        kinds: list[Kind] = Field(list(get_args(Kind)), min_length=1, description="kinds of personal data to look for")
        mode: Literal["mask", "pseudonymise"] = Field(
            "mask", description="mask: replace with `mask`; pseudonymise: replace with a salted token like EMAIL#3f9a1c"
        )
        mask: str = Field("[{kind}]", description="replacement in mask mode; {kind} becomes EMAIL, PHONE, ...")
        salt_env: str | None = Field(
            None, description="environment variable holding the pseudonymisation salt (required to pseudonymise)"
        )
        token_length: int = Field(6, ge=4, le=64, description="hex characters of the pseudonym's hash")

        @field_validator("mode", mode="before")
        @classmethod
        def _spelling(cls, value: Any) -> Any:
            return "pseudonymise" if value == "pseudonymize" else value

        @model_validator(mode="after")
        def _salt_named(self) -> PiiRedaction.Options:
            if self.mode == "pseudonymise" and not self.salt_env:
                raise ValueError("mode pseudonymise needs `salt_env`: the environment variable that holds the salt")
            return self

    def __init__(self, options: Options) -> None:
        self.options = options
        self._salt = b""
        if options.mode == "pseudonymise":
            assert options.salt_env is not None
            salt = os.environ.get(options.salt_env, "")
            if not salt:
                raise PluginError(
                    f"pii_redaction: options.salt_env names the environment variable {options.salt_env}, "
                    "which is not set (or empty); set it to a long random secret to pseudonymise"
                )
            register_secret(salt, options.salt_env)
            self._salt = salt.encode()
        self._kinds = tuple(k for k in KINDS if k in options.kinds)
        self._lock = threading.Lock()
        self._found: Counter[str] = Counter()
        self._rows_changed = 0

    @property
    def needs_fields(self) -> dict[str, tuple[str, ...]]:
        """The fields named in ``columns``; core checks them against the rows before any row runs."""
        return {"columns": tuple(self.options.columns or ())}

    def _replacement(self, kind: str, canonical: str) -> str:
        label = kind.upper()
        if self.options.mode == "mask":
            return self.options.mask.replace("{kind}", label)
        digest = hmac.new(self._salt, f"{kind}:{canonical}".encode(), hashlib.sha256).hexdigest()
        return f"{label}#{digest[: self.options.token_length]}"

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` with every finding replaced, and the count of findings per kind."""
        findings = find(text, self._kinds)
        counts: Counter[str] = Counter()
        if not findings:
            return text, counts
        out, last = [], 0
        for finding in findings:
            out += [text[last : finding.start], self._replacement(finding.kind, finding.canonical)]
            last = finding.end
            counts[finding.kind] += 1
        out.append(text[last:])
        return "".join(out), counts

    @inline
    def process(self, data: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Return the row with personal data in its chosen columns replaced (None when there was none)."""
        updates: dict[str, str] = {}
        counts: Counter[str] = Counter()
        for column in chosen_columns(data, self.options.columns, self.name):
            redacted, found = self.redact(data[column])
            if found:
                updates[column] = redacted
                counts.update(found)
        with self._lock:
            self._found.update(counts)
            self._rows_changed += bool(updates)
        return {**data, **updates} if updates else None

    def summary(self) -> dict[str, Any]:
        """What was found, per kind, for the run metadata (never the values themselves)."""
        with self._lock:
            return {
                "mode": self.options.mode,
                "rows_changed": self._rows_changed,
                "found": {kind: self._found[kind] for kind in self._kinds},
                "total": sum(self._found.values()),
            }
