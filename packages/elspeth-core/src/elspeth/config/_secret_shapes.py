"""Refusing secrets written into a settings file: by their key's name, and by their shape wherever they are.

A settings file is not secret (it is hashed into the run's records, copied into bundles, committed
to repositories), so a credential in it is refused at load time, with the setting's line:

- a key named like a secret (``api_key``, ``token``, ``connection_string``, ...) with a value;
- a key named like a credential header (``Authorization``, ``api-key``, ``x-api-key``,
  ``Ocp-Apim-Subscription-Key``, ``Cookie``, ...) with a value, e.g. in ``extra_body`` or ``headers``;
- a value shaped like a credential wherever it is (``Bearer ...``, ``Basic ...``, ``sk-...``, a JWT,
  a connection string's ``AccountKey=``);
- a URL (``base_url``, ``endpoint``, any other) with user-info (``https://user:pw@host``) or a
  credential in its query (``?api-key=...``, ``?sig=...``); a database URL (``store.url``) may name
  its user, never its password (``postgresql://user@host/db``).

``allowed_endpoints`` is left to its own check (its entries are prefixes, never sent).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from elspeth.config._yaml import Checker, Loc

__all__ = ["SECRET_KEYS", "find_secrets", "secret_shape"]

SECRET_KEYS = re.compile(
    r"^(api[_-]?key|apikey|password|passwd|secret|client[_-]?secret|token|access[_-]?token|"
    r"connection[_-]?string|sas[_-]?token|account[_-]?key|signing[_-]?key|subscription[_-]?key)$",
    re.IGNORECASE,
)
_HEADER_KEYS = re.compile(
    r"^(authorization|proxy[_-]authorization|x[_-]api[_-]key|api[_-]key|ocp[_-]apim[_-]subscription[_-]key|"
    r"cookie|set[_-]cookie|x[_-]goog[_-]api[_-]key|x[_-]functions[_-]key|x[_-]auth[_-]token|bearer)$",
    re.IGNORECASE,
)
_QUERY_KEYS = frozenset(
    {
        "api-key",
        "api_key",
        "apikey",
        "key",
        "code",
        "token",
        "access_token",
        "auth",
        "sig",
        "signature",
        "password",
        "secret",
        "client_secret",
        "subscription-key",
    }
)
_SCHEME = re.compile(r"^\s*(bearer|basic|token)\s+(\S{8,})\s*$", re.IGNORECASE)
_SHAPES = (
    (re.compile(r"^\s*sk-[A-Za-z0-9_-]{16,}\s*$"), "an API key ('sk-...')"),
    (re.compile(r"^\s*eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+\s*$"), "a token (a JWT)"),
    (re.compile(r"(AccountKey|SharedAccessSignature|SharedAccessKey)\s*=\s*[^;\s]", re.IGNORECASE), "a key ('{0}=')"),
)
_URL = re.compile(r"^\s*[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_FROM_ENV = "secrets are read only from environment variables"
_DATABASE_SCHEMES = frozenset({"postgresql", "postgres"})


def _http_credential(value: str) -> str | None:
    """``Bearer``/``Token`` and a word with a digit or token character, or ``Basic`` and base64 of ``user:pw``.

    So that "Basic instructions" or "Token counting" in a prompt pass.
    """
    found = _SCHEME.match(value)
    if found is None:
        return None
    scheme, word = found.group(1), found.group(2)
    if scheme.lower() == "basic":
        try:
            return scheme if b":" in base64.b64decode(word, validate=True) else None
        except ValueError:
            return None
    return scheme if re.search(r"[0-9_.~+/=-]", word) else None


def _url_problem(value: str) -> str | None:
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    # a database URL names its user (postgresql://elspeth@host/db), which is no secret; its password would be
    named_user = parts.scheme.lower() in _DATABASE_SCHEMES and parts.password is None
    if "@" in parts.netloc and not named_user:
        return (
            f"this URL holds user-info ('...@'), a credential in the settings file; {_FROM_ENV}: "
            "remove it and name the variable with the plugin's `*_env` option (e.g. `api_key_env`)"
        )
    for name, item in parse_qsl(parts.query, keep_blank_values=False):
        if name.lower() in _QUERY_KEYS and item:
            return (
                f"this URL's query holds `{name}=`, a credential in the settings file; {_FROM_ENV}: "
                "remove it and name the variable with the plugin's `*_env` option (e.g. `api_key_env`)"
            )
    return None


def secret_shape(key: Any, value: Any) -> str | None:
    """Why ``key: value`` puts a secret in the settings file, or None if it does not."""
    if isinstance(key, str) and isinstance(value, str) and value.strip():
        if SECRET_KEYS.match(key):
            return f"{_FROM_ENV}; put it in one and write `{key}_env: VAR_NAME`"
        if _HEADER_KEYS.match(key):
            return (
                f"`{key}` with a value sends a credential written in the settings file; {_FROM_ENV}: "
                "use the plugin's `api_key_env` (or its other `*_env` option)"
            )
    if not isinstance(value, str):
        return None
    if _URL.match(value):
        return _url_problem(value)
    scheme = _http_credential(value)
    what = f"an HTTP credential ('{scheme} ...')" if scheme is not None else None
    for pattern, shape in _SHAPES:
        found = pattern.search(value) if what is None else None
        if found:
            what = shape.format(found.group(1)) if found.groups() else shape
    if what is None:
        return None
    return f"this value looks like {what}; {_FROM_ENV}: put it in one and use the plugin's `*_env` option"


def find_secrets(value: Any, loc: Loc, checker: Checker) -> None:
    """Add a problem to ``checker`` for every secret written into the settings ``value`` (at ``loc``)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not loc and key == "allowed_endpoints":
                continue
            problem = secret_shape(key, item)
            if problem is not None:
                checker.add((*loc, key), problem)
            else:
                find_secrets(item, (*loc, key), checker)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problem = secret_shape(None, item)
            if problem is not None:
                checker.add((*loc, i), problem)
            else:
                find_secrets(item, (*loc, i), checker)
