"""The status server: GET /health, /calls and /metrics for operators and monitoring.

Callers' numbers and words are in /calls, so every route answers only requests that name this
server (against DNS rebinding), and /calls needs ``http.token`` when one is set; /health and
/metrics stay open to whoever can reach ``http.host``:``http.port``.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..config import ConsoleConfig, HttpConfig
from .console.app import add_console
from .controller import CallController
from .history import CallHistory
from .metrics import CONTENT_TYPE


class AriLink(Protocol):
    """The bot's side of ARI: the one event stream (connect mode) or the acceptor (accept)."""

    @property
    def connected(self) -> bool: ...


# Addresses that listen on every interface: the Host a client uses cannot be predicted.
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


def host_name(value: str) -> str:
    """The host of a ``Host`` header (or ``host[:port]``), lower-case, without the port, the
    IPv6 brackets or a trailing dot: ``Bot.Example:8089`` → ``bot.example``, ``[::1]:80`` →
    ``::1``; a bare IPv6 address is kept whole."""
    value = value.strip().lower()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` (and ``Origin``) a request to the status server may name.

    Against DNS rebinding: a page on evil.example whose name the attacker re-points at this
    machine makes the browser send ``Host: evil.example``; only names this server is known by
    are answered. Bound to a wildcard address (0.0.0.0, ::) the server's own addresses are
    not known, so any IP literal is accepted: a browser sends one only for a page loaded from
    that address itself, which rebinding cannot produce. Names must still be listed.
    """

    names: frozenset[str]
    any_ip: bool

    @classmethod
    def of(cls, http: HttpConfig) -> HostPolicy:
        bound = host_name(http.host)
        extra = {host_name(h) for h in http.allowed_hosts.split(",") if h.strip()}
        names = {bound, "localhost", "127.0.0.1", "::1", *extra} - {""}
        return cls(frozenset(names), any_ip=bound in _WILDCARD_HOSTS)

    def allows(self, host: str) -> bool:
        return host in self.names or (self.any_ip and _is_ip(host))

    def allows_origin(self, origin: str) -> bool:
        """``Origin: https://host:port``; "null" (a sandboxed page, a file) names no host."""
        scheme, sep, rest = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and self.allows(host_name(rest))


def _host_guard(policy: HostPolicy) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        # No Host at all (HTTP/1.0) is refused too: browsers and HTTP/1.1 clients always send it.
        host = host_name(request.headers.get("Host", ""))
        if not policy.allows(host):
            return web.Response(
                status=421,
                text=f"421 Misdirected Request: this voicebot does not answer to the host name "
                f"{host[:100]!r} (add it to http.allowed_hosts if it is really this server's)\n",
            )
        origin = request.headers.get("Origin")
        if origin is not None and not policy.allows_origin(origin):
            return web.Response(
                status=403, text="403 Forbidden: requests from pages of other sites are refused\n"
            )
        return await handler(request)

    return guard


def _token_required(token: str, handler: Handler) -> Handler:
    """``handler`` behind ``Authorization: Bearer <token>``; open when ``token`` is empty."""
    if not token:
        return handler
    expected = token.encode()

    async def guarded(request: web.Request) -> web.StreamResponse:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return _unauthorized("this endpoint needs 'Authorization: Bearer <token>'", "")
        # Constant time, so the answer's timing does not leak how much of a guess was right.
        if not hmac.compare_digest(given.strip().encode(), expected):
            return _unauthorized("wrong token", ', error="invalid_token"')
        return await handler(request)

    return guarded


def _unauthorized(message: str, challenge_extra: str) -> web.Response:
    return web.json_response(
        {"error": message},
        status=401,
        headers={"WWW-Authenticate": f'Bearer realm="voicebot"{challenge_extra}'},
    )


def engines_down(engines: dict[str, dict[str, Any]]) -> list[str]:
    """The engines (by /health's names) whose model is not loaded or whose workers died."""
    return sorted(
        name
        for name, status in engines.items()
        if not (status.get("loaded", True) and status.get("workers_alive", True))
    )


def status_app(
    controller: CallController,
    stream: AriLink,
    http: HttpConfig,
    console: ConsoleConfig | None = None,
    history: CallHistory | None = None,
) -> web.Application:
    """GET /health, /calls and /metrics, and the console under /console/. Every route answers
    only requests naming this server (see :class:`HostPolicy`); /calls (callers' numbers,
    transcripts) also needs ``http.token`` when one is set, and the console always does,
    while /health and /metrics stay open to whoever can reach ``http.host``:``http.port``
    (monitoring probes carry no token). /health answers 503 while ARI is disconnected or the
    bot drains, so a load balancer's check takes it out."""

    async def health_body() -> dict[str, Any]:
        health = controller.health()
        down = engines_down(health.get("engines", {}))
        # 503 while draining too: a load balancer must stop sending calls at once. A dead
        # engine: every call would only be handed back, so no calls should come here.
        status = ("draining" if controller.draining else
                  "ari-disconnected" if not stream.connected else
                  "engine-down" if down else "ok")  # fmt: skip
        body = {"status": status, "ari_connected": stream.connected, **health}
        if down:
            body["engines_down"] = down
        return body

    async def health_route(_: web.Request) -> web.Response:
        body = await health_body()
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    async def metrics(_: web.Request) -> web.Response:
        body = controller.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def calls(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "active": [c.summary() for c in controller.calls.values()],
                "recent": list(controller.recent),
            }
        )

    app = web.Application(middlewares=[_host_guard(HostPolicy.of(http))])
    app.router.add_get("/health", health_route)
    app.router.add_get("/calls", _token_required(http.token, calls))
    app.router.add_get("/metrics", metrics)
    add_console(app, controller, health_body, http, console or ConsoleConfig(), history)
    return app
