from __future__ import annotations

import asyncio
import time
from itertools import pairwise

import numpy as np
import pytest

from voicebot.media.codecs import get_codec
from voicebot.media.pacer import Pacer
from voicebot.media.rtp import RtpPacket, RtpPacketizer

ULAW = get_codec("ulaw")
FRAME = 160


class FakeClock:
    """Time advances only when the pacer sleeps (plus whatever a test adds)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.stalls: dict[int, float] = {}  # sleep call number -> extra oversleep
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds + self.stalls.get(self.sleeps, 0.0)
        await asyncio.sleep(0)


class Sink:
    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.times: list[float] = []
        self.firsts: list[bool] = []

    def __call__(self, packet: RtpPacket) -> None:
        self.packets.append(packet)

    def on_sent(self, when: float, first: bool) -> None:
        self.times.append(when)
        self.firsts.append(first)


def make_pacer(clock: FakeClock | None = None) -> tuple[Pacer, Sink]:
    sink = Sink()
    if clock is None:
        pacer = Pacer(sink, ULAW, 0, ssrc=42)
    else:
        pacer = Pacer(sink, ULAW, 0, clock, sleep=clock.sleep, ssrc=42)
    pacer.on_sent = sink.on_sent
    return pacer, sink


def ramp(samples: int) -> np.ndarray:
    return (np.arange(samples) % 2000 * 8).astype(np.int16)


# --- RtpPacketizer -------------------------------------------------------------------------


def test_packetizer_sequence_timestamp_marker() -> None:
    packetizer = RtpPacketizer(7, 0, 8000, FRAME, initial_sequence=10, initial_timestamp=1000)
    first = packetizer.packet(b"a", talkspurt_start=True)
    second = packetizer.packet(b"b", talkspurt_start=False)
    assert (first.sequence, first.timestamp, first.marker, first.ssrc) == (10, 1000, True, 7)
    assert (second.sequence, second.timestamp, second.marker) == (11, 1160, False)
    packetizer.skip(8000)
    packetizer.payload_type = 8
    third = packetizer.packet(b"c", talkspurt_start=True)
    assert (third.sequence, third.timestamp, third.payload_type) == (12, 9320, 8)


def test_packetizer_wraps() -> None:
    packetizer = RtpPacketizer(
        1, 0, 8000, FRAME, initial_sequence=65535, initial_timestamp=2**32 - 100
    )
    assert packetizer.packet(b"", talkspurt_start=False).sequence == 65535
    wrapped = packetizer.packet(b"", talkspurt_start=False)
    assert (wrapped.sequence, wrapped.timestamp) == (0, 60)


def test_packetizer_random_start() -> None:
    starts = {RtpPacketizer(1, 0, 8000, FRAME).sequence for _ in range(20)}
    assert len(starts) > 1


# --- Pacer with a fake clock ----------------------------------------------------------------


async def test_frames_are_full_and_sequential() -> None:
    clock = FakeClock()
    pacer, sink = make_pacer(clock)
    pacer.play(ramp(50 * FRAME))
    pacer.start()
    await asyncio.wait_for(pacer.wait_idle(), 2)
    await pacer.aclose()
    assert len(sink.packets) == 50
    assert all(len(p.payload) == FRAME for p in sink.packets)
    assert [p.marker for p in sink.packets] == [True] + [False] * 49
    for a, b in pairwise(sink.packets):
        assert b.sequence == (a.sequence + 1) % 65536
        assert b.timestamp == (a.timestamp + FRAME) % 2**32
    t0 = sink.times[0]
    assert sink.times == pytest.approx([t0 + n * 0.02 for n in range(50)], abs=1e-9)
    assert (
        ULAW.decode(sink.packets[3].payload).tolist()
        == ULAW.decode(ULAW.encode(ramp(50 * FRAME)[3 * FRAME : 4 * FRAME])).tolist()
    )
    assert pacer.stats.frames_sent == 50
    assert pacer.stats.talkspurts == 1


async def test_partial_tail_kept_then_padded() -> None:
    clock = FakeClock()
    pacer, sink = make_pacer(clock)
    pacer.play(ramp(250))
    assert pacer.queued_frames == 1
    pacer.play(ramp(20))  # tail grows to 110 samples, still no second frame
    assert pacer.queued_frames == 1
    pacer.end_of_stream()
    assert pacer.queued_frames == 2
    pacer.play(ramp(10), last=True)
    assert pacer.queued_frames == 3
    pacer.start()
    await asyncio.wait_for(pacer.wait_idle(), 2)
    await pacer.aclose()
    assert [len(p.payload) for p in sink.packets] == [FRAME] * 3
    second = ULAW.decode(sink.packets[1].payload)
    assert np.all(second[110:] == 0) and np.any(second[:110] != 0)


async def test_idle_gap_starts_new_talkspurt_with_advanced_timestamp() -> None:
    clock = FakeClock()
    pacer, sink = make_pacer(clock)
    pacer.start()
    pacer.play(ramp(10 * FRAME))
    await asyncio.wait_for(pacer.wait_idle(), 2)
    last = sink.packets[-1]
    clock.now += 1.0  # one second of silence on the wire
    pacer.play(ramp(5 * FRAME))
    await asyncio.wait_for(pacer.wait_idle(), 2)
    await pacer.aclose()
    resumed = sink.packets[10]
    assert resumed.marker
    assert resumed.sequence == (last.sequence + 1) % 65536
    # It starts 1 s of wall time after the last frame started: 8000 samples later.
    assert resumed.timestamp == (last.timestamp + 8000) % 2**32
    assert sink.times[10] - sink.times[9] == pytest.approx(1.0)
    assert pacer.stats.talkspurts == 2
    assert sink.firsts.count(True) == 2


async def test_audio_arriving_in_time_continues_talkspurt() -> None:
    clock = FakeClock()
    pacer, sink = make_pacer(clock)
    pacer.start()
    pacer.play(ramp(3 * FRAME))
    await asyncio.wait_for(pacer.wait_idle(), 2)
    pacer.play(ramp(3 * FRAME))  # queued before the next frame's slot: seamless
    await asyncio.wait_for(pacer.wait_idle(), 2)
    await pacer.aclose()
    assert [p.marker for p in sink.packets] == [True] + [False] * 5
    assert sink.packets[3].timestamp == (sink.packets[2].timestamp + FRAME) % 2**32


async def test_flush_drops_queued_audio() -> None:
    clock = FakeClock()
    pacer, sink = make_pacer(clock)
    dropped: list[int] = []

    def barge_in(when: float, first: bool) -> None:
        sink.on_sent(when, first)
        if len(sink.times) == 3:
            dropped.append(pacer.flush())

    pacer.on_sent = barge_in
    pacer.play(ramp(50 * FRAME + 10))
    pacer.start()
    await asyncio.wait_for(pacer.wait_idle(), 2)
    await asyncio.sleep(0.01)
    assert dropped == [48]  # 47 whole frames + the partial tail
    assert len(sink.packets) == 3
    assert not pacer.is_playing
    pacer.play(ramp(FRAME))
    await asyncio.wait_for(pacer.wait_idle(), 2)
    await pacer.aclose()
    assert sink.packets[3].marker  # audio after barge-in is a new talkspurt


async def test_pause_keeps_the_queue_and_resume_goes_on_as_a_new_talkspurt() -> None:
    clock = FakeClock()
    pacer, sink = make_pacer(clock)

    def soft_barge_in(when: float, first: bool) -> None:
        sink.on_sent(when, first)
        if len(sink.times) == 3:
            pacer.pause()

    pacer.on_sent = soft_barge_in
    pacer.play(ramp(10 * FRAME), last=True)
    pacer.start()
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(sink.packets) == 3 and pacer.paused
    assert pacer.is_playing and pacer.queued_frames == 7  # nothing dropped
    clock.now += 0.5  # the caller coughed for half a second
    pacer.resume()
    await asyncio.wait_for(pacer.wait_idle(), 2)
    await pacer.aclose()
    payloads = [p.payload for p in sink.packets]
    assert payloads == [ULAW.encode(f) for f in ramp(10 * FRAME).reshape(10, FRAME)]
    assert [p.marker for p in sink.packets] == [True, False, False, True, *[False] * 6]
    # The receiver's clock ran on during the pause: so does the RTP timestamp.
    gap = (sink.packets[3].timestamp - sink.packets[2].timestamp) % 2**32
    assert gap >= FRAME + 0.5 * 8000 - FRAME


async def test_flush_while_paused_drops_everything_and_unpauses() -> None:
    pacer, sink = make_pacer(FakeClock())
    pacer.pause()
    pacer.play(ramp(3 * FRAME))
    pacer.start()
    await asyncio.sleep(0.01)
    assert sink.packets == [] and pacer.is_playing
    assert pacer.flush() == 3
    assert not pacer.paused and not pacer.is_playing
    await asyncio.wait_for(pacer.wait_idle(), 1)
    await pacer.aclose()


async def test_flush_before_start() -> None:
    pacer, sink = make_pacer(FakeClock())
    pacer.play(ramp(10 * FRAME))
    assert pacer.is_playing
    assert pacer.flush() == 10
    assert not pacer.is_playing
    await asyncio.wait_for(pacer.wait_idle(), 1)
    assert sink.packets == []


async def test_small_lag_catches_up_large_lag_reanchors() -> None:
    clock = FakeClock()
    clock.stalls = {5: 0.03, 15: 0.2}  # 30 ms hiccup, then a 200 ms stall
    pacer, sink = make_pacer(clock)
    pacer.play(ramp(30 * FRAME))
    pacer.start()
    await asyncio.wait_for(pacer.wait_idle(), 2)
    await pacer.aclose()
    assert len(sink.packets) == 30
    assert pacer.stats.reanchors == 1
    assert pacer.stats.max_late_ms == pytest.approx(200, abs=1)
    gaps = np.diff(sink.times)
    # After the re-anchor frames are spaced 20 ms again instead of bursting the backlog.
    assert np.all(gaps[-10:] == pytest.approx(0.02, abs=1e-9))
    assert sum(1 for g in gaps if g < 0.019) <= 2  # catch-up after the 30 ms hiccup only
    timestamps = [p.timestamp for p in sink.packets]
    assert all((b - a) % 2**32 == FRAME for a, b in pairwise(timestamps))


async def test_payload_type_can_be_learned_later() -> None:
    clock = FakeClock()
    pacer, sink = make_pacer(clock)
    pacer.payload_type = 8
    pacer.play(ramp(FRAME))
    pacer.start()
    await asyncio.wait_for(pacer.wait_idle(), 2)
    await pacer.aclose()
    assert sink.packets[0].payload_type == 8


async def test_failing_callbacks_do_not_stop_the_clock() -> None:
    clock = FakeClock()
    pacer, sink = make_pacer(clock)

    def broken(when: float, first: bool) -> None:
        raise RuntimeError("boom")

    pacer.on_sent = broken
    pacer.play(ramp(5 * FRAME))
    pacer.start()
    await asyncio.wait_for(pacer.wait_idle(), 2)
    await pacer.aclose()
    assert len(sink.packets) == 5


async def test_task_named_and_aclose_idempotent() -> None:
    pacer, _ = make_pacer(FakeClock())
    pacer.start()
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "rtp-pacer" in names
    await pacer.aclose()
    await pacer.aclose()
    assert "rtp-pacer" not in {task.get_name() for task in asyncio.all_tasks()}


def test_play_rejects_wrong_dtype() -> None:
    pacer, _ = make_pacer(FakeClock())
    with pytest.raises(ValueError, match="int16"):
        pacer.play(np.zeros(160, dtype=np.float32))


# --- Pacer on the real clock ----------------------------------------------------------------


async def test_real_clock_does_not_drift() -> None:
    pacer, sink = make_pacer()
    pacer.play(ramp(50 * FRAME))
    started = time.monotonic()
    pacer.start()
    await asyncio.wait_for(pacer.wait_idle(), 5)
    await pacer.aclose()
    assert len(sink.times) == 50
    t0 = sink.times[0]
    assert t0 - started < 0.1
    errors = [abs(t - (t0 + n * 0.02)) for n, t in enumerate(sink.times)]
    # Generous bound for loaded CI machines; drift would grow with n past this.
    assert max(errors) < 0.05
    assert sink.times[-1] - t0 == pytest.approx(0.98, abs=0.05)


async def test_wait_for_room_returns_once_the_queue_has_drained_to_the_mark() -> None:
    clock = FakeClock()
    pacer, sink = make_pacer(clock)
    pacer.play(ramp(100 * FRAME))  # 2 s queued
    await asyncio.wait_for(pacer.wait_for_room(5.0), 1)  # already room: returns at once
    assert sink.packets == []
    pacer.start()
    await asyncio.wait_for(pacer.wait_for_room(0.5), 2)
    # Woken when the 25th-last frame was left (the pacer may send a few more meanwhile).
    assert 20 <= pacer.queued_frames <= 25 and pacer.queued_seconds <= 0.5
    assert len(sink.packets) == 100 - pacer.queued_frames
    await pacer.aclose()


async def test_a_flush_releases_whoever_waits_for_room() -> None:
    pacer, _sink = make_pacer(FakeClock())
    pacer.play(ramp(100 * FRAME))
    pacer.pause()
    waiting = asyncio.create_task(pacer.wait_for_room(0.5))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # paused: the queue does not drain, the producer waits
    pacer.flush()
    await asyncio.wait_for(waiting, 1)
