"""The Asterisk side of an externalMedia RTP stream, for tests without Asterisk."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import numpy as np

from voicebot.media.g711 import ulaw_encode
from voicebot.media.rtp import RtpPacket

FRAME = 160  # 20 ms at 8 kHz


@dataclass
class Received:
    at: float
    packet: RtpPacket


@dataclass
class RtpPeer(asyncio.DatagramProtocol):
    """Binds ``port``; sends μ-law RTP to the bot and records what the bot sends back."""

    received: list[Received] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    bot: tuple[str, int] | None = None
    seq: int = field(default_factory=lambda: random.randrange(65536))
    ts: int = field(default_factory=lambda: random.randrange(2**32))
    ssrc: int = 0x1234ABCD

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> RtpPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=(host, port))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(Received(time.monotonic(), RtpPacket.parse(data)))

    async def send_speech(self, pcm_8k: np.ndarray, payload_type: int = 0) -> None:
        """Send audio as 20 ms packets in real time, like a talking caller."""
        assert self.transport is not None and self.bot is not None
        start = time.monotonic()
        for n, offset in enumerate(range(0, len(pcm_8k), FRAME)):
            frame = pcm_8k[offset : offset + FRAME]
            if len(frame) < FRAME:
                frame = np.pad(frame, (0, FRAME - len(frame)))
            packet = RtpPacket(
                payload_type, self.seq, self.ts, self.ssrc, ulaw_encode(frame), marker=n == 0
            )
            self.transport.sendto(packet.serialize(), self.bot)
            self.seq = (self.seq + 1) % 65536
            self.ts = (self.ts + FRAME) % 2**32
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))

    def received_since(self, t: float) -> list[Received]:
        return [r for r in self.received if r.at >= t]

    async def wait_for_packets(
        self, count: int, since: float = 0.0, within_s: float = 10.0
    ) -> None:
        deadline = time.monotonic() + within_s
        while len(self.received_since(since)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"bot sent {len(self.received_since(since))} packets, "
                    f"expected {count} within {within_s} s"
                )
            await asyncio.sleep(0.02)

    async def wait_for_silence(self, quiet_s: float = 0.3, within_s: float = 15.0) -> None:
        """Until the bot has sent nothing for ``quiet_s`` (its prompt finished)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            last = self.received[-1].at if self.received else 0.0
            if self.received and time.monotonic() - last >= quiet_s:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("bot kept talking")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
