from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from voicebot.errors import MediaError
from voicebot.media.endpoint import PortAllocator, RtpEndpoint
from voicebot.media.rtp import RtpPacket

HOST = "127.0.0.1"


def free_port_range(count: int) -> int:
    """A run of ``count`` currently unused UDP ports (other test processes may hold some)."""
    for _ in range(500):
        base = random.randint(20000, 60000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind((HOST, port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError("no free port range found")


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    sock = udp_socket()
    yield sock
    sock.close()


@pytest.fixture
async def endpoint() -> AsyncIterator[RtpEndpoint]:
    base = free_port_range(4)
    ep = await RtpEndpoint.open(PortAllocator(HOST, base, base + 3))
    yield ep
    await ep.aclose()


def pkt(seq: int, payload_type: int = 0, payload: bytes = b"\xff" * 160) -> bytes:
    return RtpPacket(payload_type, seq, seq * 160, 0x1234, payload).serialize()


async def until(condition: Callable[[], bool], limit_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def connect(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    host, port = peer.getsockname()
    endpoint.set_remote(host, port)


async def test_accepts_only_the_remote_address(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    peer.sendto(pkt(1), (HOST, endpoint.local_port))  # before set_remote: foreign
    await until(lambda: endpoint.stats.received == 1)
    assert endpoint.stats.foreign_dropped == 1

    connect(endpoint, peer)
    stranger = udp_socket()
    try:
        stranger.sendto(pkt(2), (HOST, endpoint.local_port))
        peer.sendto(pkt(3), (HOST, endpoint.local_port))
        await until(lambda: endpoint.stats.received == 3)
    finally:
        stranger.close()
    packet = await endpoint.receive(timeout=1.0)
    assert packet is not None and packet.sequence == 3
    assert endpoint.stats.foreign_dropped == 2
    assert endpoint.stats.accepted == 1


async def test_malformed_dropped_without_exception(
    endpoint: RtpEndpoint, peer: socket.socket
) -> None:
    connect(endpoint, peer)
    for junk in (b"", b"junk", b"\x40" + b"\x00" * 20):
        peer.sendto(junk, (HOST, endpoint.local_port))
    peer.sendto(pkt(5), (HOST, endpoint.local_port))
    packet = await endpoint.receive(timeout=1.0)
    assert packet is not None and packet.sequence == 5
    assert endpoint.stats.malformed_dropped == 3
    assert endpoint.stats.accepted == 1


async def test_reorders_and_drops_duplicates(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    connect(endpoint, peer)
    for seq in (10, 12, 11, 11, 13):
        peer.sendto(pkt(seq), (HOST, endpoint.local_port))
    got = []
    for _ in range(4):
        packet = await endpoint.receive(timeout=1.0)
        assert packet is not None
        got.append(packet.sequence)
    assert got == [10, 11, 12, 13]
    assert endpoint.stats.duplicates == 1


async def test_receive_timeout_flushes_held_packets(
    endpoint: RtpEndpoint, peer: socket.socket
) -> None:
    connect(endpoint, peer)
    for seq in (1, 3):
        peer.sendto(pkt(seq), (HOST, endpoint.local_port))
    first = await endpoint.receive(timeout=1.0)
    assert first is not None and first.sequence == 1
    await until(lambda: endpoint.stats.accepted == 2)
    held = await endpoint.receive(timeout=0.05)
    assert held is not None and held.sequence == 3
    assert endpoint.stats.lost == 1
    assert await endpoint.receive(timeout=0.01) is None


async def test_payload_type_learned_and_dtmf_separated(
    endpoint: RtpEndpoint, peer: socket.socket
) -> None:
    connect(endpoint, peer)
    assert endpoint.remote_payload_type is None
    peer.sendto(pkt(1, payload_type=101, payload=b"\x05\x0a\x00\xa0"), (HOST, endpoint.local_port))
    peer.sendto(pkt(2, payload_type=8), (HOST, endpoint.local_port))
    audio = await endpoint.receive(timeout=1.0)
    assert audio is not None and audio.payload_type == 8
    assert endpoint.remote_payload_type == 8
    event = endpoint.dtmf_queue.get_nowait()
    assert event.payload_type == 101 and event.payload[0] == 5
    assert endpoint.stats.dtmf == 1


async def test_send_goes_to_remote(endpoint: RtpEndpoint, peer: socket.socket) -> None:
    packet = RtpPacket(0, 7, 1120, 99, b"\xff" * 160, marker=True)
    endpoint.send(packet)  # remote unknown: dropped and counted
    assert endpoint.stats.send_dropped == 1
    connect(endpoint, peer)
    endpoint.send(packet)
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(peer, 2048), 2.0)
    assert RtpPacket.parse(data) == packet
    assert endpoint.stats.sent == 1


async def test_close_wakes_receiver_and_is_idempotent(endpoint: RtpEndpoint) -> None:
    waiter = asyncio.create_task(endpoint.receive())
    await asyncio.sleep(0.01)
    endpoint.close()
    assert await asyncio.wait_for(waiter, 1.0) is None
    endpoint.close()
    assert endpoint.closed


async def test_set_remote_requires_ip_literal(endpoint: RtpEndpoint) -> None:
    with pytest.raises(MediaError, match="IP address"):
        endpoint.set_remote("asterisk.example", 4000)


async def test_port_exhaustion_release_and_reuse() -> None:
    base = free_port_range(2)
    allocator = PortAllocator(HOST, base, base + 1)
    first = await RtpEndpoint.open(allocator)
    second = await RtpEndpoint.open(allocator)
    assert {first.local_port, second.local_port} == {base, base + 1}
    with pytest.raises(MediaError, match=f"^no free RTP port in {base}-{base + 1}$"):
        await RtpEndpoint.open(allocator)
    freed = first.local_port
    first.close()
    await first.aclose()
    third = await RtpEndpoint.open(allocator)
    assert third.local_port == freed
    await second.aclose()
    await third.aclose()
    assert allocator.in_use == frozenset()


async def test_ports_held_by_other_processes_are_skipped() -> None:
    base = free_port_range(2)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind((HOST, base))
    try:
        allocator = PortAllocator(HOST, base, base + 1)
        endpoint = await RtpEndpoint.open(allocator)
        assert endpoint.local_port == base + 1
        with pytest.raises(MediaError, match="no free RTP port"):
            await RtpEndpoint.open(allocator)
        await endpoint.aclose()
    finally:
        squatter.close()


def test_invalid_port_range() -> None:
    with pytest.raises(MediaError, match="invalid RTP port range"):
        PortAllocator(HOST, 5000, 4000)
