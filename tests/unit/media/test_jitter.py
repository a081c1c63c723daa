from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.media.jitter import ReorderBuffer
from voicebot.media.rtp import RtpPacket


def pkt(seq: int, ssrc: int = 1) -> RtpPacket:
    return RtpPacket(0, seq % 65536, seq * 160 % 2**32, ssrc, bytes([seq % 256]))


def seqs(packets: list[RtpPacket]) -> list[int]:
    return [p.sequence for p in packets]


def push_all(buffer: ReorderBuffer, order: list[int]) -> list[int]:
    out: list[int] = []
    for seq in order:
        out += seqs(buffer.push(pkt(seq)))
    return out


def test_in_order_passes_straight_through() -> None:
    buffer = ReorderBuffer()
    assert push_all(buffer, [10, 11, 12]) == [10, 11, 12]
    assert buffer.held == 0


def test_reordered_packet_fills_gap() -> None:
    buffer = ReorderBuffer()
    assert push_all(buffer, [1, 3]) == [1]
    assert seqs(buffer.push(pkt(2))) == [2, 3]
    assert buffer.stats.reordered == 1
    assert buffer.stats.lost == 0


def test_duplicates_dropped_and_counted() -> None:
    buffer = ReorderBuffer()
    assert push_all(buffer, [1, 2, 2, 4, 4]) == [1, 2]
    assert buffer.stats.duplicates == 2


def test_gap_skipped_after_depth_newer_packets() -> None:
    buffer = ReorderBuffer(depth=3)
    assert push_all(buffer, [1, 3, 4, 5]) == [1]
    assert seqs(buffer.push(pkt(6))) == [3, 4, 5, 6]
    assert buffer.stats.lost == 1
    # The missing packet arriving afterwards is late, not a duplicate.
    assert buffer.push(pkt(2)) == []
    assert buffer.stats.late == 1
    assert buffer.stats.duplicates == 0


def test_depth_zero_never_waits() -> None:
    buffer = ReorderBuffer(depth=0)
    assert push_all(buffer, [1, 4, 5]) == [1, 4, 5]
    assert buffer.stats.lost == 2


def test_flush_releases_held_in_order() -> None:
    buffer = ReorderBuffer(depth=5)
    assert push_all(buffer, [1, 5, 3]) == [1]
    assert seqs(buffer.flush()) == [3, 5]
    assert buffer.stats.lost == 2
    assert buffer.flush() == []
    assert seqs(buffer.push(pkt(6))) == [6]


def test_wraparound() -> None:
    buffer = ReorderBuffer()
    assert push_all(buffer, [65534, 0, 65535, 1]) == [65534, 65535, 0, 1]
    assert buffer.stats.reordered == 1
    assert push_all(buffer, [65535]) == []
    assert buffer.stats.duplicates == 1


def test_ssrc_change_resets() -> None:
    buffer = ReorderBuffer()
    assert push_all(buffer, [100, 102]) == [100]
    out = buffer.push(pkt(7, ssrc=2))
    # The old stream's held packets come first, then the new stream starts at once.
    assert [(p.ssrc, p.sequence) for p in out] == [(1, 102), (2, 7)]
    assert seqs(buffer.push(pkt(8, ssrc=2))) == [8]


def test_large_jump_resyncs_instead_of_counting_loss() -> None:
    buffer = ReorderBuffer()
    assert push_all(buffer, [1, 2, 30000, 30001]) == [1, 2, 30000, 30001]
    assert buffer.stats.resyncs == 1
    assert buffer.stats.lost == 0


def test_negative_depth_rejected() -> None:
    with pytest.raises(ValueError):
        ReorderBuffer(depth=-1)


@given(
    start=st.integers(0, 65535),
    swaps=st.sets(st.integers(0, 29), max_size=20),
    duplicates=st.lists(st.integers(0, 59), max_size=10),
)
def test_local_reordering_delivers_everything_once_in_order(
    start: int, swaps: set[int], duplicates: list[int]
) -> None:
    order = list(range(start, start + 60))
    for pair in swaps:  # disjoint adjacent swaps: displacement well within depth 3
        i = 2 * pair
        order[i], order[i + 1] = order[i + 1], order[i]
    for i in duplicates:
        order.insert(i + 1, order[i])
    buffer = ReorderBuffer(depth=3)
    out = push_all(buffer, order) + seqs(buffer.flush())
    expected = [s % 65536 for s in range(start, start + 60)]
    if out[0] != expected[0]:
        # The first packet defines the start; earlier ones are late by definition.
        expected = expected[expected.index(out[0]) :]
    assert out == expected
    assert buffer.stats.lost == 0
