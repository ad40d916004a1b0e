"""Outbound HTTP to tenants' endpoints (login callback, reminder webhook).

- No redirects: they would carry signed headers to another host.
- Only public addresses, checked at call time: the host is resolved, every address it resolves to must be
  public (not private, loopback, link-local, unspecified, multicast or reserved), and the connection is
  made to one of exactly those addresses, so a DNS answer cannot change between the check and the connect.
  A tenant's URL naming an internal service (169.254.169.254, 10.x, localhost...) is refused before any
  connection is attempted.
- The one exception is the local stage: ``http://localhost`` / ``http://127.0.0.1`` (what the app settings
  accept there, see tenancy.models.check_callback_url) may reach loopback.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.error
import urllib.request
from functools import lru_cache
from typing import Any

from chalicelib.core.config import get_settings
from chalicelib.core.observability import log_event

LOCAL_HOSTS = ("localhost", "127.0.0.1")


class RefusedTarget(urllib.error.URLError):
    """The URL resolves to an address Jifen does not call (an URLError: callers treat it as unreachable)."""


def was_refused(exc: BaseException) -> bool:
    """Whether a failed call was refused here (urllib wraps the refusal in an URLError of its own)."""
    return isinstance(exc, RefusedTarget) or (isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, RefusedTarget))


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or not address.is_global
    )


def _local_loopback(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_loopback and host in LOCAL_HOSTS and get_settings().stage == "local"


def vetted_addresses(host: str, port: int) -> list[tuple[Any, ...]]:
    """Every (family, type, proto, sockaddr) ``host`` resolves to, if all of them may be called; else RefusedTarget."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise urllib.error.URLError(f"cannot resolve {host}") from exc
    if not infos:
        raise urllib.error.URLError(f"cannot resolve {host}")
    found = []
    for family, kind, proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if _refused(address) and not _local_loopback(host, address):
            log_event("outbound_refused", host=host, address=str(address))
            raise RefusedTarget(f"{host} resolves to a non-public address")
        found.append((family, kind, proto, sockaddr))
    return found


def _connect(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT, source_address: Any = None) -> socket.socket:  # type: ignore[attr-defined]
    """socket.create_connection, but only to the vetted addresses of the host."""
    host, port = address
    last: OSError | None = None
    for family, kind, proto, sockaddr in vetted_addresses(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"cannot connect to {host}")


class _VettedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect


class _VettedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect


class _VettedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_VettedHTTPConnection, req)


class _VettedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_VettedHTTPSConnection, req)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@lru_cache(maxsize=1)
def opener() -> urllib.request.OpenerDirector:
    """No proxies (they would connect on our behalf, unchecked), no redirects, only vetted addresses."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _RefuseRedirects, _VettedHTTPHandler, _VettedHTTPSHandler)
