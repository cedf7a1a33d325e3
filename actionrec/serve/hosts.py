"""The Host check against DNS rebinding: a page of another site that points its own name at
this machine's address cannot talk to a server bound to loopback (Jupyter's rule)."""

from __future__ import annotations

import ipaddress

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})


def loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine alone."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def answered_names(host: str, allowed: list[str]) -> frozenset[str] | None:
    """The Host names a server bound to ``host`` answers to: on loopback, the loopback names and
    ``allowed``; elsewhere ``allowed`` and the loopback names where some are given, else any
    (None)."""
    return LOOPBACK_NAMES | set(allowed) if loopback(host) or allowed else None


class HostCheck:
    """ASGI middleware: 403 unless the Host header, port aside, is one of ``names``."""

    def __init__(self, app, names: frozenset[str]):
        self.app, self.names = app, names

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            given = Headers(scope=scope).get("host", "")
            if host_name(given) not in self.names:
                answer = JSONResponse({"detail": f"Host {given!r} is not one this server answers "
                                                 f"to ({', '.join(sorted(self.names))}; "
                                                 f"--allow-host adds one)"}, status_code=403)
                return await answer(scope, receive, send)
        await self.app(scope, receive, send)


def host_name(host: str) -> str:
    """A Host header without its port, lower case: ``[::1]:80`` -> ``[::1]``."""
    host = host.strip().lower()
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and len(port) <= 5 else host
