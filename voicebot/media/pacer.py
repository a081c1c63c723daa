"""Outbound RTP: real-time pacing of 20 ms frames (asyncio); packets come from rtp.RtpPacketizer."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from .codecs import DEFAULT_FRAME_MS, MS_PER_SECOND, Codec
from .g711 import PcmArray
from .rtp import RtpPacket, RtpPacketizer

logger = logging.getLogger(__name__)

# Behind by more than this many frames (event loop stalled): restart the schedule from now
# instead of bursting the backlog, which would overflow the far end's jitter buffer.
MAX_LAG_FRAMES = 3


@dataclass
class PacerStats:
    frames_sent: int = 0
    talkspurts: int = 0
    max_late_ms: float = 0.0
    reanchors: int = 0
    frames_flushed: int = 0


class Pacer:
    """Sends queued audio as one frame every 20 ms on an absolute schedule.

    Frame n of a talkspurt goes out at t0 + n * frame time, so sleep jitter never accumulates.
    An empty queue ends the talkspurt; the next one starts with marker=1 and a timestamp
    advanced by the idle wall time, as if silence had been sent.
    """

    def __init__(
        self,
        send: Callable[[RtpPacket], None],
        codec: Codec,
        payload_type: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        frame_ms: int = DEFAULT_FRAME_MS,
        ssrc: int | None = None,
        name: str = "rtp-pacer",
    ) -> None:
        self._send = send
        self.codec = codec
        self._clock = clock
        self._sleep = sleep
        self._name = name
        self.frame_samples = codec.samples_per_frame(frame_ms)
        self.frame_seconds = frame_ms / MS_PER_SECOND
        self.packetizer = RtpPacketizer(
            secrets.randbits(32) if ssrc is None else ssrc,
            payload_type,
            codec.sample_rate,
            self.frame_samples,
        )
        self.on_sent: Callable[[float, bool], None] | None = None
        self.stats = PacerStats()
        self._frames: deque[bytes] = deque()
        self._tail: PcmArray = np.zeros(0, dtype=np.int16)
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # Set whenever the queue holds at most ``_room_frames`` (see ``wait_for_room``).
        self._room = asyncio.Event()
        self._room.set()
        self._room_frames = 0
        self._task: asyncio.Task[None] | None = None
        # Schedule of the current talkspurt; None between talkspurts.
        self._t0: float | None = None
        self._frame_index = 0
        self._next_deadline: float | None = None
        self._paused = False

    @property
    def payload_type(self) -> int:
        return self.packetizer.payload_type

    @payload_type.setter
    def payload_type(self, value: int) -> None:
        self.packetizer.payload_type = value

    @property
    def is_playing(self) -> bool:
        return bool(self._frames)

    @property
    def queued_frames(self) -> int:
        return len(self._frames)

    @property
    def queued_seconds(self) -> float:
        return len(self._frames) * self.frame_seconds

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop sending at the next frame boundary, keeping what is queued (soft barge-in)."""
        if not self._paused:
            self._paused = True
            self._end_talkspurt()

    def resume(self) -> None:
        """Go on from where ``pause`` stopped, as a new talkspurt."""
        if self._paused:
            self._paused = False
            self._notify()

    def play(self, pcm: PcmArray, last: bool = False) -> None:
        """Queue audio at the codec rate; ``last=True`` pads the final partial frame."""
        array = np.asarray(pcm)
        if array.dtype != np.int16 or array.ndim != 1:
            raise ValueError(f"expected mono int16 PCM, got {array.dtype} with shape {array.shape}")
        audio = np.concatenate((self._tail, array)) if self._tail.size else array
        whole = len(audio) - len(audio) % self.frame_samples
        for start in range(0, whole, self.frame_samples):
            self._frames.append(self.codec.encode(audio[start : start + self.frame_samples]))
        self._tail = audio[whole:].copy()
        if last:
            self.end_of_stream()
        self._notify()

    def end_of_stream(self) -> None:
        """Pad the pending partial frame with silence so it goes out: frames are always full."""
        if self._tail.size:
            padded = np.zeros(self.frame_samples, dtype=np.int16)
            padded[: self._tail.size] = self._tail
            self._frames.append(self.codec.encode(padded))
            self._tail = np.zeros(0, dtype=np.int16)
        self._notify()

    def flush(self) -> int:
        """Drop all queued audio now (barge-in); returns the number of frames dropped."""
        dropped = len(self._frames) + (1 if self._tail.size else 0)
        self._frames.clear()
        self._tail = np.zeros(0, dtype=np.int16)
        self.stats.frames_flushed += dropped
        # Audio after a barge-in is discontinuous: it must start a new talkspurt.
        self._end_talkspurt()
        self._paused = False
        self._idle.set()
        self._room.set()
        return dropped

    async def wait_for_room(self, ahead_s: float) -> None:
        """Return once at most ``ahead_s`` seconds of audio are queued: the producer's
        back-pressure, so a long prompt is synthesized only a little ahead of what is heard
        (bounded memory, and no work wasted when the caller barges in). While paused the
        queue does not drain, so this waits with it."""
        limit = max(0, int(ahead_s / self.frame_seconds))
        while len(self._frames) > limit:
            self._room_frames = limit
            self._room.clear()
            await self._room.wait()

    async def wait_idle(self) -> None:
        """Return once the queue is empty and its last frame has been sent."""
        await self._idle.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # we ourselves are being cancelled, not just the pacer task

    def _notify(self) -> None:
        if self._frames:
            self._idle.clear()
            if not self._paused:
                self._wakeup.set()

    def _end_talkspurt(self) -> None:
        if self._t0 is not None:
            self._next_deadline = self._deadline()
        self._t0 = None
        self._frame_index = 0

    def _deadline(self) -> float:
        assert self._t0 is not None
        return self._t0 + self._frame_index * self.frame_seconds

    def _begin_talkspurt(self, now: float) -> None:
        if self._next_deadline is not None and now > self._next_deadline:
            # The receiver's clock kept running while we were silent; so does our timestamp.
            idle = now - self._next_deadline
            self.packetizer.skip(round(idle * self.codec.sample_rate))
        self._t0 = now
        self._frame_index = 0

    async def _run(self) -> None:
        while True:
            if not self._frames or self._paused:
                if not self._frames:
                    self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                # Audio arriving after the next frame's slot (plus one frame of grace) is
                # discontinuous: it starts a new talkspurt rather than being sent late.
                if self._t0 is not None and self._clock() > self._deadline() + self.frame_seconds:
                    self._end_talkspurt()
                continue
            now = self._clock()
            if self._t0 is None:
                self._begin_talkspurt(now)
            deadline = self._deadline()
            if deadline > now:
                await self._sleep(deadline - now)
                if self._t0 is None or not self._frames or self._paused:
                    continue  # flushed or paused while we slept
                now = self._clock()
            self._send_frame(now, deadline)

    def _send_frame(self, now: float, deadline: float) -> None:
        late = now - deadline
        self.stats.max_late_ms = max(self.stats.max_late_ms, late * MS_PER_SECOND)
        if late > MAX_LAG_FRAMES * self.frame_seconds:
            self._t0 = now - self._frame_index * self.frame_seconds
            self.stats.reanchors += 1
        first = self._frame_index == 0
        packet = self.packetizer.packet(self._frames.popleft(), talkspurt_start=first)
        if len(self._frames) <= self._room_frames:
            self._room.set()
        self._frame_index += 1
        self.stats.frames_sent += 1
        if first:
            self.stats.talkspurts += 1
        # A failing sink or callback must not stop the media clock for the rest of the call.
        try:
            self._send(packet)
        except Exception:
            logger.exception("RTP send failed")
        if self.on_sent is not None:
            try:
                self.on_sent(now, first)
            except Exception:
                logger.exception("pacer on_sent callback failed")
