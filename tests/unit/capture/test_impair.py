from __future__ import annotations

import copy
import math
import re
from collections import Counter
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.capture.impair import Impairments, ImpairmentStats, impair
from voicebot.capture.pcap import UdpDatagram, rtp_stream_from_pcm
from voicebot.media.rtp import RTP_HEADER_SIZE, RtpPacket, seq_distance

SRC = ("10.0.0.1", 4000)
DST = ("192.168.1.20", 40002)
SSRC = 0xCAFE0001


def stream(
    count: int,
    *,
    start: float = 10.0,
    ssrc: int = SSRC,
    first_sequence: int = 0,
    first_timestamp: int = 0,
) -> list[UdpDatagram]:
    """20 ms ulaw-sized RTP datagrams whose payloads are all different."""
    return [
        UdpDatagram(
            start + index * 0.02,
            SRC,
            DST,
            RtpPacket(
                payload_type=0,
                sequence=(first_sequence + index) % 65536,
                timestamp=(first_timestamp + index * 160) % 2**32,
                ssrc=ssrc,
                payload=index.to_bytes(4, "big") * 40,
                marker=index == 0,
            ).serialize(),
        )
        for index in range(count)
    ]


def sequences(datagrams: list[UdpDatagram]) -> list[int]:
    return [RtpPacket.parse(d.payload).sequence for d in datagrams]


def assert_sorted(datagrams: list[UdpDatagram]) -> None:
    times = [d.time for d in datagrams]
    assert times == sorted(times)


EVERYTHING = Impairments(
    loss_pct=10,
    jitter_ms=30,
    reorder_pct=10,
    duplicate_pct=10,
    ssrc_change_at_s=1.0,
    truncate_pct=10,
    seed=7,
)


# ---------------------------------------------------------------------------------------------
# Options


def test_no_impairments_return_an_equal_list() -> None:
    datagrams = stream(50)
    out, stats = impair(datagrams, Impairments())
    assert out == datagrams
    assert stats == ImpairmentStats()
    assert all(a is not b for a, b in zip(out, datagrams, strict=True))


def test_empty_input() -> None:
    assert impair([], EVERYTHING) == ([], ImpairmentStats())


def test_output_is_stably_sorted_by_time() -> None:
    a, b, c = (UdpDatagram(t, SRC, DST, p) for t, p in [(2.0, b"a"), (1.0, b"b"), (2.0, b"c")])
    out, _ = impair([a, b, c], Impairments())
    assert [d.payload for d in out] == [b"b", b"a", b"c"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"loss_pct": 150}, "--loss: 150 is not a percentage (0-100)"),
        ({"loss_pct": -0.5}, "--loss: -0.5 is not a percentage (0-100)"),
        ({"loss_pct": math.nan}, "--loss: nan is not a percentage (0-100)"),
        ({"reorder_pct": 101}, "--reorder: 101 is not a percentage (0-100)"),
        ({"duplicate_pct": -1}, "--duplicate: -1 is not a percentage (0-100)"),
        ({"truncate_pct": 100.5}, "--truncate: 100.5 is not a percentage (0-100)"),
        ({"jitter_ms": -5}, "--jitter: -5 ms must be >= 0"),
        ({"jitter_ms": math.inf}, "--jitter: inf ms must be finite"),
        ({"ssrc_change_at_s": -1.5}, "--ssrc-change-at: -1.5 s must be >= 0"),
    ],
)
def test_validation_messages(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Impairments(**options)  # type: ignore[arg-type]


def test_boundary_values_are_accepted() -> None:
    Impairments(loss_pct=100, reorder_pct=0, duplicate_pct=100, truncate_pct=100)
    Impairments(ssrc_change_at_s=0)


def test_active_and_describe() -> None:
    assert not Impairments(seed=5).active
    assert Impairments(seed=5).describe() == "none"
    assert (
        Impairments(loss_pct=5, jitter_ms=40, seed=1).describe() == "loss 5%, jitter 40 ms, seed 1"
    )
    assert Impairments(ssrc_change_at_s=0).active
    assert EVERYTHING.describe() == (
        "loss 10%, jitter 30 ms, reorder 10%, duplicate 10%, truncate 10%, "
        "ssrc change at 1 s, seed 7"
    )
    for field in ("loss_pct", "jitter_ms", "reorder_pct", "duplicate_pct", "truncate_pct"):
        assert Impairments(**{field: 2.5}).active  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# One impairment at a time


def test_total_loss() -> None:
    out, stats = impair(stream(100), Impairments(loss_pct=100))
    assert out == []
    assert stats == ImpairmentStats(lost=100)


def test_half_loss_is_binomial() -> None:
    datagrams = stream(2000)
    out, stats = impair(datagrams, Impairments(loss_pct=50, seed=3))
    # Mean 1000, standard deviation ~22: six deviations either side never fails by chance.
    assert 866 <= stats.lost <= 1134
    assert len(out) + stats.lost == len(datagrams)
    assert stats == ImpairmentStats(lost=stats.lost)
    remaining = iter(datagrams)
    assert all(d in remaining for d in out)  # survivors keep their order and content


def test_jitter_keeps_payloads_and_bounds_delay() -> None:
    datagrams = stream(500)
    out, stats = impair(datagrams, Impairments(jitter_ms=60, seed=1))
    assert Counter(d.payload for d in out) == Counter(d.payload for d in datagrams)
    sent = {d.payload: d.time for d in datagrams}
    delays = [d.time - sent[d.payload] for d in out]
    assert min(delays) >= 0
    assert max(delays) <= 0.060
    assert max(delays) > 0.050  # the whole range is used
    assert stats == ImpairmentStats(delayed=500)
    assert_sorted(out)
    # 60 ms of jitter on a 20 ms stream has to reorder some packets.
    assert sequences(out) != sorted(sequences(out))


def test_reorder_everything_swaps_pairs() -> None:
    datagrams = stream(10)
    out, stats = impair(datagrams, Impairments(reorder_pct=100))
    assert sequences(out) == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8]
    assert stats == ImpairmentStats(reordered=5)
    assert out[1].time == pytest.approx(datagrams[1].time + 0.001)
    assert out[0] == datagrams[1]


def test_reorder_swaps_neighbours_only() -> None:
    datagrams = stream(1000)
    out, stats = impair(datagrams, Impairments(reorder_pct=20, seed=2))
    assert 100 <= stats.reordered <= 250
    order = sequences(out)
    assert sorted(order) == list(range(1000))
    assert all(abs(position - seq) <= 1 for position, seq in enumerate(order))
    swaps = sum(1 for a, b in pairwise(order) if a > b)
    assert swaps == stats.reordered
    assert_sorted(out)


def test_duplicate_everything() -> None:
    datagrams = stream(100)
    out, stats = impair(datagrams, Impairments(duplicate_pct=100, seed=4))
    assert stats == ImpairmentStats(duplicated=100)
    assert Counter(d.payload for d in out) == Counter(d.payload for d in datagrams * 2)
    sent = {d.payload: d.time for d in datagrams}
    copies = [d for d in out if d not in datagrams]
    assert len(copies) == 100
    assert all(0 <= d.time - sent[d.payload] <= 0.005 for d in copies)
    assert_sorted(out)


def test_duplicate_some() -> None:
    out, stats = impair(stream(1000), Impairments(duplicate_pct=10, seed=4))
    assert 50 <= stats.duplicated <= 150
    assert len(out) == 1000 + stats.duplicated
    counts = Counter(d.payload for d in out)
    assert sum(1 for n in counts.values() if n == 2) == stats.duplicated


def test_truncate_cuts_payloads() -> None:
    datagrams = [*stream(200), UdpDatagram(20.0, SRC, DST, b"")]
    out, stats = impair(datagrams, Impairments(truncate_pct=100, seed=5))
    assert stats == ImpairmentStats(truncated=200)  # an empty payload cannot be cut
    assert out[-1] == datagrams[-1]
    short_headers = 0
    for original, cut in zip(datagrams[:-1], out[:-1], strict=True):
        assert cut.time == original.time
        assert len(cut.payload) < len(original.payload)
        assert original.payload.startswith(cut.payload)
        if len(cut.payload) < RTP_HEADER_SIZE:
            short_headers += 1
            with pytest.raises(ValueError, match=r"^RTP packet too short"):
                RtpPacket.parse(cut.payload)
        else:
            assert (
                RtpPacket.parse(cut.payload).sequence == RtpPacket.parse(original.payload).sequence
            )
    assert short_headers > 0


def test_truncate_some() -> None:
    datagrams = stream(1000)
    out, stats = impair(datagrams, Impairments(truncate_pct=10, seed=5))
    assert 50 <= stats.truncated <= 150
    shorter = sum(1 for a, b in zip(datagrams, out, strict=True) if len(b.payload) < len(a.payload))
    assert shorter == stats.truncated


def test_ssrc_change_only_after_the_given_time() -> None:
    datagrams = stream(100, start=10.0, first_sequence=65500, first_timestamp=2**32 - 1000)
    out, stats = impair(datagrams, Impairments(ssrc_change_at_s=1.0, seed=9))
    change_at = datagrams[0].time + 1.0
    before = [RtpPacket.parse(d.payload) for d in out if d.time < change_at]
    after = [RtpPacket.parse(d.payload) for d in out if d.time >= change_at]
    assert len(before) == 50
    assert stats == ImpairmentStats(ssrc_changed=50)
    assert [d.payload for d in out[:50]] == [d.payload for d in datagrams[:50]]
    assert [d.time for d in out] == [d.time for d in datagrams]

    new_ssrcs = {p.ssrc for p in after}
    assert len(new_ssrcs) == 1
    assert new_ssrcs != {SSRC}
    originals = [RtpPacket.parse(d.payload) for d in datagrams[50:]]
    assert [p.payload for p in after] == [p.payload for p in originals]
    assert [p.marker for p in after] == [p.marker for p in originals]
    # The new stream is continuous in itself, and discontinuous with the old one.
    assert all(seq_distance(a.sequence, b.sequence) == 1 for a, b in pairwise(after))
    assert all((b.timestamp - a.timestamp) % 2**32 == 160 for a, b in pairwise(after))
    assert seq_distance(before[-1].sequence, after[0].sequence) != 1


def test_ssrc_change_keeps_streams_apart_and_skips_non_rtp() -> None:
    junk = UdpDatagram(12.0, SRC, DST, b"not rtp")
    datagrams = sorted([*stream(20, ssrc=1), *stream(20, ssrc=2), junk], key=lambda d: d.time)
    out, stats = impair(datagrams, Impairments(ssrc_change_at_s=0))
    assert stats.ssrc_changed == 40
    assert junk in out
    ssrcs = {RtpPacket.parse(d.payload).ssrc for d in out if d != junk}
    assert len(ssrcs) == 2
    assert not ssrcs & {1, 2}


def test_ssrc_change_is_seeded_and_independent_of_loss() -> None:
    def new_ssrc(impairments: Impairments) -> int:
        out, _ = impair(stream(20), impairments)
        return RtpPacket.parse(out[-1].payload).ssrc

    first = new_ssrc(Impairments(ssrc_change_at_s=0, seed=1))
    assert new_ssrc(Impairments(ssrc_change_at_s=0, seed=1, loss_pct=30)) == first
    assert new_ssrc(Impairments(ssrc_change_at_s=0, seed=2)) != first


def test_ssrc_change_on_a_pcm_stream() -> None:
    pcm = (np.arange(8000) % 200 * 50).astype(np.int16)
    datagrams = rtp_stream_from_pcm(pcm, codec="ulaw", src=SRC, dst=DST, ssrc=5, start_time=3.0)
    out, stats = impair(datagrams, Impairments(ssrc_change_at_s=0.5, seed=11))
    assert stats.ssrc_changed == 25
    assert {RtpPacket.parse(d.payload).ssrc for d in out[:25]} == {5}
    assert 5 not in {RtpPacket.parse(d.payload).ssrc for d in out[25:]}


# ---------------------------------------------------------------------------------------------
# Everything together


def test_same_seed_same_output_different_seed_different_output() -> None:
    datagrams = stream(300)
    first = impair(datagrams, EVERYTHING)
    assert impair(datagrams, EVERYTHING) == first
    other = impair(datagrams, Impairments(**{**EVERYTHING.__dict__, "seed": 8}))
    assert other[0] != first[0]


def test_input_is_never_mutated() -> None:
    datagrams = stream(300)
    snapshot = copy.deepcopy(datagrams)
    out, stats = impair(datagrams, EVERYTHING)
    assert datagrams == snapshot
    assert all(stat > 0 for stat in stats.__dict__.values())
    for datagram in out:
        datagram.time += 1
        datagram.payload = b""
    assert datagrams == snapshot


percentages = st.floats(0, 100, allow_nan=False)


@given(
    count=st.integers(0, 60),
    loss=percentages,
    jitter=st.floats(0, 100, allow_nan=False),
    reorder=percentages,
    duplicate=percentages,
    truncate=percentages,
    change_at=st.none() | st.floats(0, 2, allow_nan=False),
    seed=st.integers(0, 2**64),
)
def test_any_impairments_keep_invariants(
    count: int,
    loss: float,
    jitter: float,
    reorder: float,
    duplicate: float,
    truncate: float,
    change_at: float | None,
    seed: int,
) -> None:
    impairments = Impairments(loss, jitter, reorder, duplicate, change_at, truncate, seed)
    datagrams = stream(count)
    out, stats = impair(datagrams, impairments)
    assert_sorted(out)
    assert len(out) == count - stats.lost + stats.duplicated
    assert stats.truncated <= count - stats.lost
    assert stats.ssrc_changed <= count - stats.lost
    assert impair(datagrams, impairments) == (out, stats)
    assert datagrams == stream(count)
