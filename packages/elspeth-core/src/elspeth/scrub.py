"""The secrets a run holds, and the one scrub that keeps their values out of everything Elspeth records.

Every plugin that reads a secret (an API key, a token, a connection string, the signing key) reads
it through :func:`secret_from_env` or hands it to :func:`register_secret`, so the process's
:class:`Secrets` knows its value. Text that comes from outside (an LLM's error message or reply, a
service's error, a storage SDK's exception) passes :func:`scrub_secrets` where it enters Elspeth:
the LLM pipeline scrubs every attempt's error and every reply, middleware services and the blob
plugins scrub their errors, the CLI scrubs what it prints, and :func:`install_log_scrubbing` puts a
filter on the log handlers. So whatever a server echoes back ("Incorrect API key provided: Bearer
sk-..."), no output file, store, audit trail, report or console line holds the value.

The registry is per process on purpose: a secret is a fact of the process's environment, shared by
every plugin that reads it, and it only ever grows (a value is never "unregistered"). Values shorter
than :data:`MIN_LENGTH` are not registered: scrubbing them would mangle ordinary text, and no real
key is that short.

Example::

    from elspeth import secret_from_env

    key = secret_from_env(options.api_key_env)   # registered: scrubbed from then on
    if not key:
        raise ConfigError(f"environment variable {options.api_key_env} ... is not set")
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from elspeth.datatypes import LLMResponse

__all__ = [
    "MIN_LENGTH",
    "SECRETS",
    "Secrets",
    "SecretsFilter",
    "install_log_scrubbing",
    "register_secret",
    "scrub_exception",
    "scrub_response",
    "scrub_secrets",
    "secret_from_env",
]

MIN_LENGTH = 6
# the parts of an Azure connection string or SAS token that are secret on their own
_SECRET_PARTS = ("accountkey", "sharedaccesssignature", "sharedaccesskey", "sig", "password", "pwd")


def _forms(value: str) -> set[str]:
    """The value and the shapes it travels in: stripped, URL-encoded, and its secret parts if it is a key=value list."""
    value = value.strip()
    forms = {value, quote(value, safe=""), quote_plus(value)}
    for part in value.replace("&", ";").lstrip("?").split(";"):
        key, sep, item = part.partition("=")
        if sep and key.strip().lower() in _SECRET_PARTS and item:
            forms |= {item, quote(item, safe=""), quote_plus(item)}
    return {f for f in forms if len(f) >= MIN_LENGTH}


class Secrets:
    """The secret values this process holds, each with the name it came by (an environment variable).

    Thread-safe; :meth:`scrub` is cheap (a substring test per value) so it can run on every reply.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._ordered: tuple[tuple[str, str], ...] = ()

    def register(self, value: str | bytes | None, name: str) -> None:
        """Remember ``value`` (and its URL-encoded and key=value forms) as the secret called ``name``."""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not value:
            return
        with self._lock:
            for form in _forms(value):
                self._names.setdefault(form, name)
            # longest first, so a secret that holds another is replaced whole
            self._ordered = tuple(sorted(self._names.items(), key=lambda kv: -len(kv[0])))

    def names(self) -> list[str]:
        """The names of the registered secrets (never their values)."""
        return sorted(set(self._names.values()))

    def leaks(self, text: str) -> bool:
        """Whether ``text`` holds a registered value."""
        return any(value in text for value, _ in self._ordered)

    def scrub(self, text: str) -> str:
        """``text`` with every registered value replaced by ``<redacted:NAME>``."""
        for value, name in self._ordered:
            if value in text:
                text = text.replace(value, f"<redacted:{name}>")
        return text

    def scrub_data(self, value: Any) -> Any:
        """A copy of JSON-like ``value`` (dicts, lists, strings) with every string scrubbed."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {self.scrub_data(k): self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub_data(v) for v in value]
        return value


SECRETS = Secrets()
"""The process's secrets: what :func:`secret_from_env` and :func:`register_secret` add to."""


def secret_from_env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of environment variable ``name`` (None if unset or empty), registered as a secret.

    Args:
        name: the variable, e.g. the ``api_key_env`` option's value.
        environ: where to look (default ``os.environ``).

    """
    value = (os.environ if environ is None else environ).get(name)
    if not value:
        return None
    register_secret(value, name)
    return value


def register_secret(value: str | bytes | None, name: str) -> None:
    """Register a secret read some other way (a token from a credential, a key from a file).

    The log handlers present now get a :class:`SecretsFilter` too (:func:`install_log_scrubbing`), so a
    program that runs Elspeth without its CLI logs no secret either.
    """
    SECRETS.register(value, name)
    if value:
        install_log_scrubbing()


def scrub_secrets(text: str) -> str:
    """``text`` with the value of every registered secret replaced by ``<redacted:NAME>``."""
    return SECRETS.scrub(text)


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend(e for e in (item.__cause__, item.__context__) if e is not None)


def scrub_exception(exc: BaseException) -> BaseException:
    """Scrub ``exc`` in place (its arguments, ``message`` and ``body``, and those of its causes); returns it.

    An exception whose ``str()`` is built from other attributes may still show a value afterwards, so
    code that records an error records ``scrub_secrets(str(exc))``, not ``str(exc)``.
    """
    for item in _chain(exc):
        try:
            item.args = tuple(SECRETS.scrub_data(a) if isinstance(a, str | list | dict) else a for a in item.args)
            for attr in ("message", "body"):
                if isinstance(getattr(item, attr, None), str | dict | list):
                    setattr(item, attr, SECRETS.scrub_data(getattr(item, attr)))
        except (AttributeError, TypeError):  # a read-only attribute: str() is scrubbed where it is recorded
            continue
    return exc


def scrub_response(response: LLMResponse) -> LLMResponse:
    """Scrub an LLM reply in place (its text, model name and string metrics); returns it.

    ``raw``, the provider's own object, is left as it is: Elspeth never writes it.
    """
    if SECRETS.leaks(response.content):
        response.content = SECRETS.scrub(response.content)
    if response.model and SECRETS.leaks(response.model):
        response.model = SECRETS.scrub(response.model)
    for key, value in response.metrics.items():
        if isinstance(value, str) and SECRETS.leaks(value):
            response.metrics[key] = SECRETS.scrub(value)
    return response


class SecretsFilter(logging.Filter):
    """A logging filter that scrubs every registered secret from a record's message and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub ``record`` in place; never drops it."""
        if not SECRETS.leaks(str(record.msg) + str(record.args) + str(record.exc_text or "")):
            if record.exc_info and record.exc_info[1] is not None:
                scrub_exception(record.exc_info[1])
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format: scrub the parts as they are
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = SECRETS.scrub(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            scrub_exception(record.exc_info[1])
        if record.exc_text:
            record.exc_text = SECRETS.scrub(record.exc_text)
        return True


def install_log_scrubbing(logger: logging.Logger | None = None) -> None:
    """Put a :class:`SecretsFilter` on every handler of ``logger`` (default: the root) and on the last-resort one.

    A filter on a handler sees every record that reaches it, from any logger (``elspeth.*``, the
    SDKs'); a filter on a logger would miss its children's records. The CLI calls this at start;
    an application embedding Elspeth calls it after setting up its own logging.
    """
    handlers = list((logger or logging.getLogger()).handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, SecretsFilter) for f in handler.filters):
            handler.addFilter(SecretsFilter())
