"""``voicebot run``: load scripts and models, connect to ARI, serve calls until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .ari.client import AriClient, is_loopback, plaintext_warning
from .ari.events import EventStream
from .config import PLACEHOLDER_PASSWORD, AriConfig, Config, HttpConfig
from .controller import CallController
from .dialog.script import ScriptLibrary
from .errors import ConfigError
from .media.endpoint import PortAllocator
from .metrics import CONTENT_TYPE, Metrics
from .runtime import load_services, warm_prompts
from .webhook import WebhookPolicy, webhook_session

log = logging.getLogger(__name__)


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


def status_app(
    controller: CallController, stream: EventStream, http: HttpConfig
) -> web.Application:
    """GET /health, /calls and /metrics. Every route answers only requests naming this server
    (see :class:`HostPolicy`); /calls (callers' numbers, transcripts) also needs
    ``http.token`` when one is set, while /health and /metrics stay open to whoever can reach
    ``http.host``:``http.port`` (monitoring probes carry no token)."""

    async def health(_: web.Request) -> web.Response:
        body = {
            "status": "ok" if stream.connected else "ari-disconnected",
            "ari_connected": stream.connected,
            **controller.health(),
        }
        return web.json_response(body, status=200 if stream.connected else 503)

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
    app.router.add_get("/health", health)
    app.router.add_get("/calls", _token_required(http.token, calls))
    app.router.add_get("/metrics", metrics)
    return app


def require_ari_password(config: AriConfig) -> None:
    """Refuse to start with no password or the placeholder one from the shipped voicebot.toml:
    the first 401 would come only later, and an Asterisk that accepts it is itself unsafe."""
    if config.password and config.password != PLACEHOLDER_PASSWORD:
        return
    what = "empty" if not config.password else f"the placeholder {PLACEHOLDER_PASSWORD!r}"
    raise ConfigError(
        f"ari.password is {what}: set Asterisk's ARI password (ari.conf) in the environment "
        "as VOICEBOT_ARI_PASSWORD, or as password under [ari] in the config file "
        "(`make run` uses the sandbox's: scripts/asterisk-sandbox.sh password)"
    )


def _warn_about_exposure(config: Config) -> None:
    """Log what start-up cannot refuse but an operator should know."""
    warning = plaintext_warning(config.ari)
    if warning:
        log.warning("%s", warning)
    if config.http.port and not config.http.token and not is_loopback(host_name(config.http.host)):
        log.warning(
            "status server on %s:%d: /calls (callers' numbers and words) is open to anyone "
            "who can reach it; set VOICEBOT_HTTP_TOKEN to require a token",
            config.http.host, config.http.port,
        )  # fmt: skip


async def serve(config: Config, scripts_dir: Path | None = None) -> None:
    """Run the bot until SIGINT/SIGTERM. Raises ``ConfigError`` at once when no real ARI
    password is set, ``AriAuthError`` on a wrong one."""
    require_ari_password(config.ari)
    WebhookPolicy.from_config(config.webhooks)  # a bad allow_hosts entry: refused now
    _warn_about_exposure(config)
    scripts = ScriptLibrary(
        scripts_dir or Path(config.dialog.scripts_dir), config.dialog.default_script
    )
    log.info("scripts: %s (default %s)", ", ".join(sorted(scripts.scripts)), scripts.default)
    services = await load_services(config, scripts.scripts, scripts.default)
    # Calls are answered while the prompt cache fills: a prompt not cached yet is synthesized
    # on demand (streamed), so start-up does not wait for every script's prompts.
    warming = asyncio.create_task(
        warm_prompts(services, scripts.scripts.values()), name="warm-prompts"
    )
    allocator = PortAllocator(config.media.bind_host, config.media.port_min, config.media.port_max)
    stop = asyncio.Event()
    stop_now = asyncio.Event()  # a second signal during the drain: do not wait any longer

    def on_signal() -> None:
        (stop_now if stop.is_set() else stop).set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)

    async with AriClient(config.ari) as ari, webhook_session() as http:
        metrics = Metrics()
        controller = CallController(config, ari, scripts, services, allocator, http, metrics)

        async def connected() -> None:
            log.info(
                "connected to ARI at %s as app %r; answering calls (at most %d at once)",
                config.ari.url, config.ari.app, controller.max_active,
            )  # fmt: skip
            await controller.connected()

        stream = EventStream(config.ari, on_connected=connected)
        metrics.watch(
            calls_active=lambda: len(controller.calls),
            ari_connected=lambda: stream.connected,
            queue_depths=lambda: {
                name: int(engine.status().get("queued", 0))
                for name, engine in services.engines().items()
            },
        )
        runner: web.AppRunner | None = None
        if config.http.port:
            runner = web.AppRunner(status_app(controller, stream, config.http), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, config.http.host, config.http.port).start()
            log.info("status on http://%s:%d/health, /calls and /metrics",
                     config.http.host, config.http.port)  # fmt: skip

        async def consume() -> None:
            async for event in stream.events():
                controller.dispatch(event)

        consumer = asyncio.create_task(consume(), name="ari-events")
        stopper = asyncio.create_task(stop.wait(), name="stop-signal")
        watcher = asyncio.create_task(controller.watch(), name="call-watch")
        try:
            done, _ = await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if consumer in done:
                consumer.result()  # re-raises AriAuthError and friends
            await _drain(controller, config.calls.drain_timeout_s, stop_now, consumer)
        finally:
            stopper.cancel()
            warming.cancel()
            watcher.cancel()
            await controller.close()
            await stream.close()
            consumer.cancel()
            await asyncio.gather(consumer, stopper, warming, watcher, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            await services.close()


async def _drain(
    controller: CallController,
    timeout_s: float,
    stop_now: asyncio.Event,
    consumer: asyncio.Task[None],
) -> None:
    """Stop taking calls and give the active ones ``timeout_s`` to finish (the event feed
    keeps running, so hangups are still seen); a second signal cuts it short."""
    if controller.calls:
        log.info("stopping: new callers are handed back as busy; %d active call(s) get up to "
                 "%g s to finish", len(controller.calls), timeout_s)  # fmt: skip
    draining = asyncio.create_task(controller.drain(timeout_s), name="drain")
    interrupted = asyncio.create_task(stop_now.wait(), name="stop-now")
    try:
        await asyncio.wait({draining, interrupted, consumer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        draining.cancel()
        interrupted.cancel()
        await asyncio.gather(draining, interrupted, return_exceptions=True)
    controller.draining = True
    if controller.calls:
        log.info("stopping: handing %d call(s) still active back to the dialplan",
                 len(controller.calls))  # fmt: skip
