"""``voicebot run``: load scripts and models, connect to ARI, serve calls until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import aiohttp
from aiohttp import web

from .ari.client import AriClient
from .ari.events import EventStream
from .config import Config
from .controller import CallController
from .dialog.script import ScriptLibrary
from .media.endpoint import PortAllocator
from .runtime import load_services, warm_prompts

log = logging.getLogger(__name__)


def status_app(controller: CallController, stream: EventStream) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        body = {
            "status": "ok" if stream.connected else "ari-disconnected",
            "ari_connected": stream.connected,
            **controller.health(),
        }
        return web.json_response(body, status=200 if stream.connected else 503)

    async def calls(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "active": [c.summary() for c in controller.calls.values()],
                "recent": list(controller.recent),
            }
        )

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/calls", calls)
    return app


async def serve(config: Config, scripts_dir: Path | None = None) -> None:
    """Run the bot until SIGINT/SIGTERM. Raises ``AriAuthError`` on a wrong password."""
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
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    async with AriClient(config.ari) as ari, aiohttp.ClientSession() as http:
        controller = CallController(config, ari, scripts, services, allocator, http)

        async def connected() -> None:
            log.info(
                "connected to ARI at %s as app %r; answering calls", config.ari.url, config.ari.app
            )
            await controller.reconcile()

        stream = EventStream(config.ari, on_connected=connected)
        runner: web.AppRunner | None = None
        if config.http.port:
            runner = web.AppRunner(status_app(controller, stream), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, config.http.host, config.http.port).start()
            log.info("status on http://%s:%d/health and /calls", config.http.host, config.http.port)

        async def consume() -> None:
            async for event in stream.events():
                controller.dispatch(event)

        consumer = asyncio.create_task(consume(), name="ari-events")
        stopper = asyncio.create_task(stop.wait(), name="stop-signal")
        try:
            done, _ = await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if consumer in done:
                consumer.result()  # re-raises AriAuthError and friends
            log.info("stopping: hanging up %d active call(s)", len(controller.calls))
        finally:
            stopper.cancel()
            warming.cancel()
            await controller.close()
            await stream.close()
            consumer.cancel()
            await asyncio.gather(consumer, stopper, warming, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            await services.close()
