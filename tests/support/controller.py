"""The call controller in a test: an in-process fake ARI server, the test doubles for speech,
real UDP RTP peers for the callers (``async with harness(answers) as h``)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from tests.support.audio import ALLISON
from tests.support.doubles import ListAsr, ToneTts
from tests.support.fakeari import FakeAri
from voicebot.ari.client import AriClient
from voicebot.ari.events import EventStream
from voicebot.call import SpeechServices
from voicebot.capture.wav import read_wav
from voicebot.config import (
    CallsConfig,
    Config,
    LogConfig,
    MediaConfig,
    RecordConfig,
    ResultsConfig,
    VadConfig,
    WebhookConfig,
)
from voicebot.dialog.library import ScriptLibrary
from voicebot.media.endpoint import PortAllocator
from voicebot.media.peer import RtpPeer
from voicebot.runtime import Runtime
from voicebot.server.controller import CallController
from voicebot.server.results import ResultsOutbox

ROOT = Path(__file__).resolve().parents[2]


def allison(name: str) -> np.ndarray:
    pcm, rate = read_wav(ALLISON / f"{name}.wav")
    assert rate == 8000
    return pcm


@dataclass
class Harness:
    fake: FakeAri
    controller: CallController
    asr: ListAsr
    tts: ToneTts
    allocator: PortAllocator
    peers: dict[str, RtpPeer] = field(default_factory=dict)

    def external_media_port(self, caller_id: str) -> int:
        for _method, path, params in self.fake.requests:
            if path.endswith("/channels/externalMedia") and params.get("channelId", "").endswith(
                caller_id
            ):
                return int(params["external_host"].rsplit(":", 1)[1])
        raise AssertionError("no externalMedia request for " + caller_id)

    async def wait_until(self, predicate: object, within_s: float = 10.0) -> None:
        assert callable(predicate)
        for _ in range(int(within_s / 0.02)):
            if predicate():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("condition not reached")

    @contextlib.asynccontextmanager
    async def call(self, *args: Any, **kwargs: Any) -> AsyncIterator[tuple[str, RtpPeer]]:
        """A caller (FakeAri.add_caller arguments) whose RTP the test plays, once bridged."""
        peer = await RtpPeer.open(port=self.fake.rtp_port)
        try:
            caller = await self.fake.add_caller(*args, **kwargs)
            self.peers[caller] = peer
            await self.peer_for(caller)
            yield caller, peer
        finally:
            peer.close()

    async def peer_for(self, caller_id: str) -> RtpPeer:
        await self.wait_until(
            lambda: (
                caller_id in self.controller.calls
                and self.controller.calls[caller_id].session is not None
            )
        )
        peer = self.peers[caller_id]
        peer.bot = ("127.0.0.1", self.external_media_port(caller_id))
        return peer


@contextlib.asynccontextmanager
async def harness(
    answers: list[str],
    *,
    rtp_port: int | None = None,
    tts: ToneTts | None = None,
    asr: ListAsr | None = None,
    scripts_dir: Path = ROOT / "prompts",
    default: str = "demo",
    record: RecordConfig | None = None,
    calls: CallsConfig | None = None,
    log: LogConfig | None = None,
    webhooks: WebhookConfig | None = None,
    results: ResultsConfig | None = None,
) -> AsyncIterator[Harness]:
    async with FakeAri(rtp_port=rtp_port) as fake:
        config = Config(
            ari=fake.config(retry_initial_s=0.05, retry_max_s=0.2),
            media=MediaConfig(port_min=41000, port_max=41019),
            vad=VadConfig(),
            record=record or RecordConfig(),
            calls=calls or CallsConfig(),
            log=log or LogConfig(),
            webhooks=webhooks or WebhookConfig(),
        )
        asr, tts = asr or ListAsr(answers), tts or ToneTts()
        allocator = PortAllocator("127.0.0.1", 41000, 41019)
        scripts = ScriptLibrary(scripts_dir, default)
        async with AriClient(config.ari) as ari, aiohttp.ClientSession() as http:
            runtime = Runtime(config, SpeechServices(asr, tts), http=http)
            # Never the working tree's .state/ outbox: a bot left running there holds it, and
            # records of test calls do not belong in it.
            # (Cleaned up below; the object's finalizer does it if setup fails before that.)
            spare = tempfile.TemporaryDirectory(prefix="voicebot-outbox-")
            kept = results or ResultsConfig(outbox=str(Path(spare.name) / "outbox.sqlite"))
            outbox = ResultsOutbox(kept, runtime.webhook_policy)
            await outbox.start()
            controller = CallController(config, ari, scripts, runtime, allocator, results=outbox)
            stream = EventStream(config.ari, on_connected=controller.connected)

            async def consume() -> None:
                async for event in stream.events():
                    controller.dispatch(event)

            consumer = asyncio.create_task(consume())
            await fake.wait_for_ws()
            h = Harness(fake, controller, asr, tts, allocator)
            try:
                yield h
            finally:
                await controller.close()
                await outbox.close()
                spare.cleanup()
                await stream.close()
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)
