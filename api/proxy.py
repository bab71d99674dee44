"""Behind a reverse proxy: whose forwarded headers are believed, and the public address QR codes point at.

A door plate hangs on a wall for years, so its QR must carry the county deployment's public address
(`settings.public_base_url`), never the host of the request that printed it (an internal host, a laptop).
Without that setting the request's own address is used, and then `X-Forwarded-Proto/Host/For` and RFC 7239
`Forwarded` are believed only when the peer is one of `settings.forwarded_allow_ips`: anyone else could make a
plate point anywhere by sending a header. uvicorn's own `ProxyHeadersMiddleware` reads neither the forwarded
host nor `Forwarded`, so `citygrid serve` turns it off and this middleware is the one place that decides.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from citygrid.settings import get_settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple[bool, tuple[Network, ...]]:
    return "*" in allowed, tuple(ipaddress.ip_network(a, strict=False) for a in allowed if a != "*")


def trusted(peer: str | None) -> bool:
    """Whether this peer address is one of the configured reverse proxies."""
    if not peer:
        return False
    anyone, nets = _networks(tuple(get_settings().forwarded_allow_ips))
    if anyone:
        return True
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:  # a unix socket path or the test client's name: not a proxy we know
        return False
    return any(ip in n for n in nets)


def _last(value: str) -> str:
    """The value the nearest proxy added to a comma-separated header."""
    return value.rsplit(",", 1)[-1].strip()


def _forwarded(value: str) -> dict[str, str]:
    """The nearest element of an RFC 7239 `Forwarded` header as {for, proto, host, by}."""
    out: dict[str, str] = {}
    for pair in _last(value).split(";"):
        k, _, v = pair.partition("=")
        if v:
            out[k.strip().lower()] = v.strip().strip('"')
    return out


def _client(xff: str, peer: str) -> str:
    """The first address from the right of X-Forwarded-For that is not a trusted proxy (uvicorn's rule)."""
    hops = [h.strip() for h in xff.split(",") if h.strip()]
    for h in reversed(hops):
        if not trusted(h):
            return h
    return hops[0] if hops else peer


def _valid_host(host: str) -> bool:
    return bool(host) and len(host) <= 255 and all(ch.isalnum() or ch in ".-:[]_" for ch in host)


class TrustedProxyHeaders:
    """Apply forwarded scheme, host and client address from trusted proxies; leave other requests as they came."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if client and trusted(str(client[0])):
                scope = self._apply(scope, str(client[0]), int(client[1]))
        await self.app(scope, receive, send)

    @staticmethod
    def _apply(scope: Scope, peer: str, port: int) -> Scope:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        proto = host = addr = None
        if "forwarded" in headers:
            f = _forwarded(headers["forwarded"])
            proto, host, addr = f.get("proto"), f.get("host"), f.get("for")
            if addr:
                addr = addr.strip("[]").split("]:")[0] if addr.startswith("[") else addr.split(":")[0]
        else:
            proto = _last(headers["x-forwarded-proto"]) if "x-forwarded-proto" in headers else None
            host = _last(headers["x-forwarded-host"]) if "x-forwarded-host" in headers else None
            addr = _client(headers["x-forwarded-for"], peer) if "x-forwarded-for" in headers else None
        scope = dict(scope)
        if proto and proto.lower() in ("http", "https"):
            secure = proto.lower() == "https"
            scope["scheme"] = ("wss" if secure else "ws") if scope["type"] == "websocket" else proto.lower()
        if host and _valid_host(host):
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"] + [
                (b"host", host.encode("latin-1"))]
        if addr and not addr.startswith("_") and addr != "unknown":
            scope["client"] = (addr, port)
        return scope


def public_base(request: Request) -> str:
    """The address QR codes and printed plates point at: the configured public base URL, else this request's
    (after the trusted proxies' headers), without a trailing slash."""
    configured = get_settings().public_base_url
    return configured or str(request.base_url).rstrip("/")
