"""Per-call RTP socket: asyncio UDP I/O, address filtering, reordering. No codec work."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ..errors import MediaError
from .jitter import DEFAULT_DEPTH, ReorderBuffer
from .rtp import RtpPacket

logger = logging.getLogger(__name__)

# RFC 2833/4733 telephone-event: Asterisk announces it as 101 unless configured otherwise.
DEFAULT_EVENT_PAYLOAD_TYPES: frozenset[int] = frozenset({101})
# 10 s of 20 ms frames: a consumer that stalls longer than that loses the oldest audio.
AUDIO_QUEUE_MAX = 500
DTMF_QUEUE_MAX = 100
MALFORMED_LOG_INTERVAL_S = 5.0

Address = tuple[str, int]
# RFC 3551: 96-127 are bound per session, so their number is whatever the sender picked.
FIRST_DYNAMIC_PAYLOAD_TYPE = 96


class RtpTap(Protocol):
    """Sees every datagram exchanged with the remote (a call recorder)."""

    def inbound(self, data: bytes, source: Address) -> None: ...

    def outbound(self, data: bytes, destination: Address) -> None: ...


class PortAllocator:
    """Hands out UDP ports from ``port_min..port_max`` (inclusive) for RTP endpoints.

    The search starts after the most recently allocated port, so a port freed by an ended
    call is not reused at once: stray packets still in flight for that call hit nobody.
    """

    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        if not 0 < port_min <= port_max < 65536:
            raise MediaError(f"invalid RTP port range {port_min}-{port_max}")
        self.host = host
        self.port_min = port_min
        self.port_max = port_max
        self._in_use: set[int] = set()
        self._cursor = port_min

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._in_use)

    def _candidates(self) -> Iterable[int]:
        span = self.port_max - self.port_min + 1
        start = self._cursor - self.port_min
        for i in range(span):
            port = self.port_min + (start + i) % span
            if port not in self._in_use:
                yield port

    async def open_endpoint(
        self,
        protocol_factory: Callable[[], asyncio.DatagramProtocol],
        host: str | None = None,
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol, int]:
        """Bind the first free port; ports other processes hold (bind fails) are skipped."""
        loop = asyncio.get_running_loop()
        bind_host = host if host is not None else self.host
        for port in self._candidates():
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    protocol_factory, local_addr=(bind_host, port)
                )
            except OSError:
                continue
            self._in_use.add(port)
            self._cursor = port + 1
            return transport, protocol, port
        raise MediaError(f"no free RTP port in {self.port_min}-{self.port_max}")

    def release(self, port: int) -> None:
        self._in_use.discard(port)


@dataclass
class EndpointStats:
    received: int = 0
    accepted: int = 0
    foreign_dropped: int = 0
    malformed_dropped: int = 0
    # Audio in a payload type other than the call's (it would decode as noise).
    wrong_payload_type_dropped: int = 0
    overflow_dropped: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    dtmf: int = 0
    sent: int = 0
    send_dropped: int = 0


class _RtpProtocol(asyncio.DatagramProtocol):
    """Only forwards datagrams; all policy lives in RtpEndpoint."""

    def __init__(self) -> None:
        self.endpoint: RtpEndpoint | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.endpoint is not None:
            self.endpoint._on_datagram(data, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.endpoint is not None:
            self.endpoint._on_socket_closed()

    def error_received(self, exc: Exception) -> None:
        # Typically ICMP port-unreachable after the far end went away; the call ends elsewhere.
        logger.debug("RTP socket error: %s", exc)


def _normalize_host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise MediaError(f"RTP remote host must be an IP address, got {host!r}") from None


def _put_dropping_oldest(queue: asyncio.Queue[RtpPacket], packet: RtpPacket) -> bool:
    """Enqueue without blocking; returns True when the oldest entry had to go."""
    dropped = False
    if queue.full():
        queue.get_nowait()
        dropped = True
    queue.put_nowait(packet)
    return dropped


class RtpEndpoint:
    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        allocator: PortAllocator,
        local_port: int,
        *,
        event_payload_types: frozenset[int],
        reorder_depth: int,
        audio_payload_type: int | None = None,
    ) -> None:
        self._transport = transport
        self._allocator = allocator
        self.local_port = local_port
        self.event_payload_types = event_payload_types
        # None: whatever audio comes first sets the call's payload type.
        self.audio_payload_type = audio_payload_type
        self.tap: RtpTap | None = None
        self.stats = EndpointStats()
        self.remote: Address | None = None
        self.remote_payload_type: int | None = None
        self.audio_queue: asyncio.Queue[RtpPacket] = asyncio.Queue(AUDIO_QUEUE_MAX)
        self.dtmf_queue: asyncio.Queue[RtpPacket] = asyncio.Queue(DTMF_QUEUE_MAX)
        self._reorder = ReorderBuffer(reorder_depth)
        self._closed = False
        self._closed_event = asyncio.Event()
        self._socket_closed = asyncio.Event()
        self._malformed_logged_at = float("-inf")
        self._malformed_unlogged = 0
        # When the last datagram from the remote arrived (monotonic; the opening until then):
        # a call whose media stopped long ago is a ghost.
        self.last_heard_at = time.monotonic()

    @classmethod
    async def open(
        cls,
        allocator: PortAllocator,
        bind_host: str | None = None,
        *,
        event_payload_types: Iterable[int] = DEFAULT_EVENT_PAYLOAD_TYPES,
        reorder_depth: int = DEFAULT_DEPTH,
        audio_payload_type: int | None = None,
    ) -> RtpEndpoint:
        transport, protocol, port = await allocator.open_endpoint(_RtpProtocol, bind_host)
        assert isinstance(protocol, _RtpProtocol)
        endpoint = cls(
            transport,
            allocator,
            port,
            event_payload_types=frozenset(event_payload_types),
            reorder_depth=reorder_depth,
            audio_payload_type=audio_payload_type,
        )
        protocol.endpoint = endpoint
        return endpoint

    @property
    def closed(self) -> bool:
        return self._closed

    def set_remote(self, host: str, port: int) -> None:
        """Accept datagrams only from exactly this address, and send to it."""
        if not 0 < port < 65536:
            raise MediaError(f"invalid RTP remote port {port}")
        self.remote = (_normalize_host(host), port)

    def _on_datagram(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.stats.received += 1
        if self.remote is None or (addr[0], addr[1]) != self.remote:
            self.stats.foreign_dropped += 1
            return
        self.last_heard_at = time.monotonic()
        if self.tap is not None:
            self.tap.inbound(data, self.remote)
        try:
            packet = RtpPacket.parse(data)
        except ValueError as exc:
            self._note_malformed(exc)
            return
        if packet.payload_type in self.event_payload_types:
            self.stats.accepted += 1
            self.stats.dtmf += 1
            _put_dropping_oldest(self.dtmf_queue, packet)
            return
        if not self._is_call_audio(packet.payload_type):
            self._note_malformed(
                ValueError(
                    f"payload type {packet.payload_type}, the call's is {self.remote_payload_type}"
                ),
                wrong_payload_type=True,
            )
            return
        self.stats.accepted += 1
        self.remote_payload_type = packet.payload_type
        self._enqueue(self._reorder.push(packet))

    def _is_call_audio(self, payload_type: int) -> bool:
        if self.remote_payload_type is not None:
            return payload_type == self.remote_payload_type
        expected = self.audio_payload_type
        if expected is None or payload_type == expected:
            return True
        # A dynamic type's number is the sender's choice: take any dynamic one for a dynamic one.
        return expected >= FIRST_DYNAMIC_PAYLOAD_TYPE and payload_type >= FIRST_DYNAMIC_PAYLOAD_TYPE

    def note_undecodable(self, exc: ValueError) -> None:
        """A packet that parsed but whose payload the codec cannot decode: malformed too."""
        self.stats.accepted -= 1
        self._note_malformed(exc)

    def _note_malformed(self, exc: ValueError, *, wrong_payload_type: bool = False) -> None:
        if wrong_payload_type:
            self.stats.wrong_payload_type_dropped += 1
        else:
            self.stats.malformed_dropped += 1
        now = time.monotonic()
        if now - self._malformed_logged_at < MALFORMED_LOG_INTERVAL_S:
            self._malformed_unlogged += 1
            return
        logger.debug(
            "dropping bad RTP on port %d: %s (%d more suppressed)",
            self.local_port,
            exc,
            self._malformed_unlogged,
        )
        self._malformed_logged_at = now
        self._malformed_unlogged = 0

    def _enqueue(self, packets: list[RtpPacket]) -> None:
        for packet in packets:
            if _put_dropping_oldest(self.audio_queue, packet):
                self.stats.overflow_dropped += 1
        reorder = self._reorder.stats
        self.stats.duplicates = reorder.duplicates
        self.stats.late = reorder.late
        self.stats.lost = reorder.lost

    # The timeout is part of the semantics (it triggers the reorder flush), not mere cancellation.
    async def receive(self, timeout: float | None = None) -> RtpPacket | None:  # noqa: ASYNC109
        """Next audio packet in order; None on timeout or once closed.

        A timeout also releases packets held behind a gap: a caller who stops talking may
        stop sending entirely, and the held audio must not wait for a packet never coming.
        """
        if not self.audio_queue.empty():
            return self.audio_queue.get_nowait()
        if self._closed:
            return None
        get = asyncio.ensure_future(self.audio_queue.get())
        closed = asyncio.ensure_future(self._closed_event.wait())
        try:
            await asyncio.wait({get, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            get.cancel()  # no-op when done; a cancelled get leaves its item in the queue
        if get.done() and not get.cancelled():
            return get.result()
        if self._closed:
            return None
        self._enqueue(self._reorder.flush())
        return None if self.audio_queue.empty() else self.audio_queue.get_nowait()

    def send(self, packet: RtpPacket) -> None:
        if self.remote is None or self._closed:
            self.stats.send_dropped += 1
            return
        data = packet.serialize()
        self._transport.sendto(data, self.remote)
        self.stats.sent += 1
        if self.tap is not None:
            self.tap.outbound(data, self.remote)

    def close(self) -> None:
        """Stop receiving and sending, and give the port back to the allocator."""
        if self._closed:
            return
        self._closed = True
        self._closed_event.set()
        self._transport.close()
        # asyncio shuts the socket one loop iteration later; an allocation in between just
        # fails to bind this port and moves on, so the bookkeeping can be released now.
        self._allocator.release(self.local_port)

    async def aclose(self) -> None:
        """``close()`` and wait until the socket is really closed and its port reusable."""
        self.close()
        await self._socket_closed.wait()

    def _on_socket_closed(self) -> None:
        if not self._closed:  # the transport died under us (not via close())
            self._closed = True
            self._closed_event.set()
            self._allocator.release(self.local_port)
        self._socket_closed.set()
