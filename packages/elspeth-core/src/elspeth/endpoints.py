"""Where a run's data goes over the network, and the settings' ``allowed_endpoints`` check of it.

Every plugin that calls a service says where: an LLM client through its ``endpoint`` attribute, any
plugin (middleware such as content safety, a utility such as a retrieval backend, a client with
more than one address) through ``endpoints``, a sequence of URLs (see
:class:`elspeth.protocols.CallsServices`). :func:`check_endpoints` compares each of them with the
list before any row, and reports one that is not on it at the plugin's own settings line.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from elspeth.config._yaml import Checker, Loc

__all__ = ["check_endpoint_entry", "check_endpoints", "declared_endpoints", "endpoint_allowed", "normalise_url"]


def normalise_url(url: str) -> str:
    """``url`` as ``scheme://host:port/path``, so two spellings of one endpoint compare equal.

    The scheme and host are lower-cased, the default port made explicit, user-info, query and
    fragment dropped, percent-escapes decoded and dot segments resolved (``/v1/../admin`` is
    ``/admin``), and the trailing slash removed.

    Raises:
        ValueError: the URL has no http(s) scheme, no host, or a port out of range.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise ValueError("it needs an http:// or https:// scheme")
    host = (parts.hostname or "").rstrip(".")  # "api.example.com." is the same host as "api.example.com"
    if not host:
        raise ValueError("it has no host")
    port = parts.port or {"https": 443, "http": 80}[scheme]  # .port raises ValueError when out of range
    path = posixpath.normpath(unquote(parts.path)) if parts.path else ""
    path = "" if path in {".", "/", "//"} else path.rstrip("/")
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}{path}"


def check_endpoint_entry(value: str) -> str:
    """Validate one ``allowed_endpoints`` entry: an http(s) URL with a host and a valid port, no user-info.

    Raises:
        ValueError: naming what is wrong and what a valid entry looks like; pydantic reports it at
            ``allowed_endpoints[N]`` with the settings file's line.
    """
    example = "write it like https://my-resource.openai.azure.com or http://127.0.0.1:8000/v1"
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL ({exc}); {example}") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise ValueError(f"{value!r} needs an http:// or https:// scheme; {example}")
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host; {example}")
    if port == 0:
        raise ValueError(f"{value!r} has port 0, which no service listens on; {example}")
    if "@" in parts.netloc:
        raise ValueError(f"{value!r} holds user-info ('...@'); an allowed endpoint is a scheme, host, port and path")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r} has a query or fragment; an allowed endpoint is a scheme, host, port and path")
    return value


def declared_endpoints(plugin: Any) -> list[str]:
    """The URLs ``plugin`` says it calls: its ``endpoints``, else its ``endpoint``, else none."""
    many = getattr(plugin, "endpoints", None)
    if many is not None and not isinstance(many, str):
        return [str(url) for url in many if url]
    one = getattr(plugin, "endpoint", None)
    return [str(one)] if one else []


def _on_list(url: str, allowed: Sequence[str]) -> bool:
    target = normalise_url(url)
    for entry in allowed:
        try:
            prefix = normalise_url(entry)
        except ValueError:  # the settings' own validation reports a bad entry at its line
            continue
        if target == prefix or target.startswith(prefix + "/"):
            return True
    return False


def check_endpoints(plugin: Any, label: str, allowed: Sequence[str] | None, loc: Loc, checker: Checker) -> bool:
    """Check every URL ``plugin`` declares against ``allowed_endpoints``; report each one off the list.

    An endpoint is allowed when, after :func:`normalise_url` (scheme, host case, default port,
    user-info, dot segments, trailing slash), it equals an allowed entry or lies under its path at a
    ``/`` boundary: ``https://h/v1`` allows ``https://h/v1/chat`` but not ``https://h/v1beta``, and
    ``http://127.0.0.1`` does not allow ``http://127.0.0.1.evil.example``. A plugin that declares no
    endpoint (mock, static, the stdlib middleware) always passes, and so does every plugin when the
    settings have no list.

    Args:
        plugin: the built plugin.
        label: how the message names it: ``LLM`` for the client, else e.g. ``llm_middleware 'x'``.
        allowed: the settings' ``allowed_endpoints`` (None: no list).
        loc: the plugin's place in the settings, where a problem is reported.
        checker: collects problems.

    Returns:
        True when every declared endpoint is allowed.

    """
    if allowed is None:
        return True
    ok = True
    for url in declared_endpoints(plugin):
        try:
            fits = _on_list(url, allowed)
        except ValueError as exc:
            problem = f"{label} endpoint {url!r} is not a URL that can be checked against allowed_endpoints: {exc}"
            checker.add(loc, problem)
            ok = False
            continue
        if not fits:
            checker.add(loc, f"{label} endpoint {url} is not in allowed_endpoints ({', '.join(allowed)})")
            ok = False
    return ok


def endpoint_allowed(client: Any, allowed: Sequence[str] | None, loc: Loc, checker: Checker) -> bool:
    """Check an LLM client's endpoints against ``allowed_endpoints`` (see :func:`check_endpoints`)."""
    return check_endpoints(client, "LLM", allowed, loc, checker)
