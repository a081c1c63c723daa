"""The Asterisk side of an externalMedia RTP stream, for tests and benchmarks without Asterisk.

It sends caller audio to the bot as 20 ms packets in real time (like a talking caller whose
phone stops sending when they stop talking) and records what the bot sends back.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .codecs import ULAW, Codec
from .levels import is_voiced
from .rtp import SEQUENCE_MODULUS, TIMESTAMP_MODULUS, RtpPacket

FRAME_MS = 20


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic() on arrival
    packet: RtpPacket


class RtpPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[Arrival] = []
        self.bot: tuple[str, int] | None = None
        self.ssrc = random.randrange(1, 2**32)
        self.last_sent = 0.0
        # When the last voiced frame went out: where the caller's turn really ended.
        self.last_voiced_sent = 0.0
        self._seq = random.randrange(SEQUENCE_MODULUS)
        self._ts = random.randrange(TIMESTAMP_MODULUS)

    @classmethod
    async def open(cls, host: str = "127.0.0.1", port: int = 0) -> RtpPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=(host, port))
        return peer

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's selector UDP transport does not subclass DatagramTransport.
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received.append(Arrival(time.monotonic(), RtpPacket.parse(data)))

    async def send_speech(self, pcm: np.ndarray, codec: Codec = ULAW) -> None:
        """Send ``pcm`` (at the codec's rate) as 20 ms packets on an absolute schedule."""
        assert self.transport is not None and self.bot is not None
        samples = codec.samples_per_frame(FRAME_MS)
        start = time.monotonic()
        for n, offset in enumerate(range(0, len(pcm), samples)):
            frame = pcm[offset : offset + samples]
            if len(frame) < samples:
                frame = np.pad(frame, (0, samples - len(frame)))
            packet = RtpPacket(
                codec.payload_type, self._seq, self._ts, self.ssrc, codec.encode(frame),
                marker=n == 0,
            )  # fmt: skip
            self.transport.sendto(packet.serialize(), self.bot)
            self.last_sent = time.monotonic()
            if is_voiced(frame):
                self.last_voiced_sent = self.last_sent
            self._seq = (self._seq + 1) % SEQUENCE_MODULUS
            self._ts = (self._ts + samples) % TIMESTAMP_MODULUS
            await asyncio.sleep(max(0.0, start + (n + 1) * FRAME_MS / 1000 - time.monotonic()))

    def first_voiced_since(self, t: float, codec: Codec) -> Arrival | None:
        """The first packet received at or after ``t`` that carries voice (``codec``'s audio)."""
        for arrival in self.received_since(t):
            if arrival.packet.payload_type == codec.payload_type and is_voiced(
                codec.decode(arrival.packet.payload)
            ):
                return arrival
        return None

    def received_since(self, t: float) -> list[Arrival]:
        return [r for r in self.received if r.at >= t]

    async def wait_for_packets(
        self, count: int, since: float = 0.0, within_s: float = 10.0
    ) -> None:
        deadline = time.monotonic() + within_s
        while len(self.received_since(since)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"bot sent {len(self.received_since(since))} packets, "
                    f"expected {count} within {within_s} s"
                )
            await asyncio.sleep(0.02)

    async def wait_quiet(
        self, since: int = 0, quiet_s: float = 0.3, within_s: float = 15.0
    ) -> None:
        """Until packets arrived after index ``since`` and then nothing for ``quiet_s``."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if len(self.received) > since and time.monotonic() - self.received[-1].at >= quiet_s:
                return
            await asyncio.sleep(0.02)
        if len(self.received) <= since:
            raise TimeoutError(f"bot sent no audio within {within_s:.0f} s")
        raise TimeoutError(f"bot still talking after {within_s:.0f} s")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
