"""``voicebot run``: load scripts and models, connect to ARI, serve calls until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from aiohttp import web

from ..ari.accept import AriAcceptor
from ..ari.client import AriClient, is_loopback, plaintext_warning
from ..ari.events import EventStream
from ..config import PLACEHOLDER_PASSWORD, AriConfig, Config, HttpConfig, listen_address
from ..dialog.library import ScriptLibrary, script_settings, sound_dirs
from ..errors import ConfigError
from ..media.endpoint import PortAllocator
from ..outbound.dialler import Dialler
from ..runtime import Runtime
from . import watchdog
from .controller import CallController
from .history import CallHistory
from .metrics import Metrics
from .results import ResultsOutbox
from .status import host_name, status_app

log = logging.getLogger(__name__)
# How long a drained worker waits for Asterisk to close its per-call sockets.
SOCKETS_CLOSE_WAIT_S = 5.0


def console_login_url(http: HttpConfig) -> str:
    """The console's login URL with the token (printed once at start, like Jupyter's): the
    bound address, or 127.0.0.1 when bound to every interface."""
    host = host_name(http.host)
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{http.port}/console/?token={quote(http.token, safe='')}"


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
    warning = plaintext_warning(config.ari) if config.ari.mode == "connect" else None
    if config.ari.mode == "accept" and not is_loopback(listen_address(config.ari.listen)[0]):
        warning = (
            f"ari.listen {config.ari.listen}: Asterisk's per-call WebSockets (the ARI password "
            "and every call's events) arrive unencrypted; keep them on a private network or "
            "let the load balancer in front terminate TLS (wss://)"
        )
    if warning:
        log.warning("%s", warning)


def require_status_token(config: HttpConfig) -> None:
    """Refuse a status server beyond this machine without ``http.token``: its /calls shows
    callers' numbers and words to whoever reaches it. /health and /metrics stay open."""
    if config.port and not config.token and not is_loopback(host_name(config.host)):
        raise ConfigError(
            f"http.host {config.host}: the status server's /calls (callers' numbers and words) "
            "would be open to anyone who can reach it; set a token in the environment as "
            "VOICEBOT_HTTP_TOKEN (http.token), or bind http.host to 127.0.0.1"
        )


async def serve(config: Config, scripts_dir: Path | None = None) -> None:
    """Run the bot until SIGINT/SIGTERM. Raises ``ConfigError`` at once when no real ARI
    password is set or /calls would be open beyond this machine, ``AriAuthError`` on a wrong
    ARI password."""
    require_ari_password(config.ari)
    require_status_token(config.http)
    _warn_about_exposure(config)
    scripts = ScriptLibrary(
        scripts_dir or Path(config.dialog.scripts_dir),
        config.dialog.default_script,
        script_settings(config.dialog),
        sound_dirs(config.dialog),
    )
    log.info("scripts: %s (default %s)", ", ".join(sorted(scripts.scripts)), scripts.default)
    # Calls are answered while the prompt cache fills: a prompt not cached yet is synthesized
    # on demand (streamed), so start-up does not wait for every script's prompts.
    allocator = PortAllocator(config.media.bind_host, config.media.port_min, config.media.port_max)
    runtime = await Runtime.open(config, scripts.scripts, scripts.default, warm_in_background=True)
    stop = asyncio.Event()
    stop_now = asyncio.Event()  # a second signal during the drain: do not wait any longer

    def on_signal() -> None:
        (stop_now if stop.is_set() else stop).set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)

    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(runtime)
        accepting = config.ari.mode == "accept"
        ari = None if accepting else await stack.enter_async_context(AriClient(config.ari))
        metrics = Metrics()
        # Before the first call: a record is kept (on disk) however its call ends.
        results = ResultsOutbox(config.results, runtime.webhook_policy, observer=metrics)
        await results.start()
        stack.push_async_callback(results.close)
        controller = CallController(config, ari, scripts, runtime, allocator, metrics, results)
        feed: EventFeed = (AcceptedFeed(config, controller) if accepting
                           else ConnectedFeed(config, controller))  # fmt: skip
        metrics.watch(
            calls_active=lambda: len(controller.calls),
            ari_connected=lambda: feed.connected,
            queue_depths=lambda: {
                name: int(engine.status().get("queued", 0))
                for name, engine in runtime.services.engines().items()
            },
        )
        if config.outbound.endpoint and ari is not None:
            dialler = Dialler(
                config.outbound,
                Path(config.outbound.store),
                ari,
                config.ari.app,
                lambda: controller.room_for_outbound() if feed.connected else 0,
                on_outcome=metrics.outbound_attempt,
                keep_record=results.keep,
                prepare=lambda attempt: runtime.warm_call(
                    scripts.get(attempt.claim.script), attempt.variables
                ),
            )
            await dialler.start()
            stack.push_async_callback(dialler.close)
            controller.outbound = dialler
        elif config.outbound.endpoint:
            log.warning("outbound.endpoint is set but ari.mode is accept: no campaign calls")
        runner: web.AppRunner | None = None
        history: CallHistory | None = None
        if config.http.port and config.http.token and config.console.history:
            # Before the first call, so the history misses none.
            history = await CallHistory.open(
                config.console.history, config.console.history_max_calls
            )
            stack.push_async_callback(history.close)
            controller.history = history
        if config.http.port:
            app = status_app(controller, feed, config.http, config.console, history)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, config.http.host, config.http.port).start()
            except OSError as exc:
                raise ConfigError(
                    f"http.port: cannot listen on {config.http.host}:{config.http.port}: {exc}"
                ) from None
            log.info("status on http://%s:%d/health, /calls and /metrics",
                     config.http.host, config.http.port)  # fmt: skip
            if config.http.token:
                # Printed, not logged: the token is a password, and logs travel further.
                print(f"console: {console_login_url(config.http)}", flush=True)
            else:
                log.info("console off: set http.token (VOICEBOT_HTTP_TOKEN) to turn it on")

        consumer = asyncio.create_task(feed.run(), name="ari-events")
        stopper = asyncio.create_task(stop.wait(), name="stop-signal")
        # Ghost and runaway calls end, for the bot's life.
        watching = watchdog.watch(controller.calls.values, config.calls)
        watcher = asyncio.create_task(watching, name="call-watch")
        try:
            done, _ = await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if consumer in done:
                consumer.result()  # re-raises AriAuthError and friends
            feed.stop_taking_calls()
            await _drain(controller, config.calls.drain_timeout_s, stop_now, consumer)
            if not stop_now.is_set():
                await feed.settle()
        finally:
            stopper.cancel()
            watcher.cancel()
            await controller.close()
            await feed.close()
            consumer.cancel()
            await asyncio.gather(consumer, stopper, watcher, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()


class EventFeed(Protocol):
    """Where the controller's ARI events come from; ``run`` returns only on a fatal error."""

    @property
    def connected(self) -> bool: ...

    async def run(self) -> None: ...

    def stop_taking_calls(self) -> None: ...

    async def settle(self) -> None:
        """After the drain: let Asterisk finish with us before the feed is closed."""

    async def close(self) -> None: ...


class ConnectedFeed:
    """ari.mode = "connect": one WebSocket to Asterisk carries every call's events."""

    def __init__(self, config: Config, controller: CallController) -> None:
        self.controller = controller
        self.config = config

        async def connected() -> None:
            log.info(
                "connected to ARI at %s as app %r; answering calls (at most %d at once)",
                config.ari.url, config.ari.app, controller.max_active,
            )  # fmt: skip
            await controller.connected()

        self.stream = EventStream(config.ari, on_connected=connected)

    @property
    def connected(self) -> bool:
        return self.stream.connected

    async def run(self) -> None:
        async for event in self.stream.events():
            self.controller.dispatch(event)

    def stop_taking_calls(self) -> None:
        pass  # new callers arrive on the one stream; the draining controller hands them back

    async def settle(self) -> None:
        pass

    async def close(self) -> None:
        await self.stream.close()


class AcceptedFeed:
    """ari.mode = "accept": a worker of a pool; Asterisk opens one WebSocket per call to
    ``ari.listen`` (through a load balancer) and the call is controlled over it."""

    def __init__(self, config: Config, controller: CallController) -> None:
        self.config = config
        self.controller = controller
        self.acceptor = AriAcceptor(
            config.ari,
            on_event=controller.dispatch,
            on_registered=controller.route_opened,
            on_lost=controller.route_lost,
        )
        self._runner: web.AppRunner | None = None

    @property
    def connected(self) -> bool:
        return self._runner is not None

    async def run(self) -> None:
        app = web.Application()
        app.router.add_get("/{path:.*}", self.acceptor.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = listen_address(self.config.ari.listen)
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"ari.listen: cannot listen on {host}:{port}: {exc}") from None
        self._runner = runner
        log.info("worker: accepting Asterisk's per-call ARI WebSockets on ws://%s:%d/ "
                 "(at most %d calls at once)", host, port, self.controller.max_active)  # fmt: skip
        await asyncio.Event().wait()  # serves until cancelled

    def stop_taking_calls(self) -> None:
        self.acceptor.refusing = True

    async def settle(self) -> None:
        # Asterisk closes a finished call's socket ~3.5 s after its StasisEnd; exiting first
        # would make it reconnect that socket to another worker for nothing.
        if not await self.acceptor.wait_closed(SOCKETS_CLOSE_WAIT_S):
            log.info("stopping: %d ARI WebSocket(s) still open; closing them",
                     len(self.acceptor.sockets))  # fmt: skip

    async def close(self) -> None:
        await self.acceptor.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


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
