"""Where a plugin may send or serve: the loopback test for servers and endpoints a run opens."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback"]


def is_loopback(host_or_url: str) -> bool:
    """Whether ``host_or_url`` (a host, or a URL's host) is this machine: ``localhost`` or a loopback address.

    A host name other than ``localhost`` is not: where it points may change. Observers that serve or
    export a run's figures use this to refuse, unless told otherwise, to send them off the machine.
    """
    host = urlsplit(host_or_url).hostname if "://" in host_or_url else host_or_url.strip("[]")
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
