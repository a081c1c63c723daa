"""Endpointing: turn a stream of fixed-size frames into utterances.

webrtcvad only says "voiced or not" per frame; this module adds the hysteresis that makes
that usable on a phone line: onset needs ``min_speech_ms`` of voice (a click is not speech),
the end needs ``hang_time_ms`` of non-voice (a pause between words is not the end), and a
ring buffer keeps ``preroll_ms`` before onset so the recognizer hears the first consonant.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import webrtcvad

from ..config import VadConfig

# Onset tolerates this much non-voice inside a burst: webrtcvad often drops single frames
# in the middle of a real word, and that must not reset the min_speech_ms count.
_ONSET_GAP_MS = 100
# Trailing silence kept in the utterance audio; whisper copes better with a short tail than
# with a hard cut, but the whole hang time would only add encoder work.
_MAX_TAIL_MS = 200
_VAD_RATES = (8000, 16000, 32000, 48000)
# webrtcvad has its own hangover: after any loud burst it keeps saying "voiced" for ~150 ms of
# plain background, which would make a 60 ms click pass min_speech_ms. So a frame only counts
# as voice if it is also this much louder (mean square ratio, ~8 dB) than the background.
_SNR_FACTOR = 6.0
# Background level tracking: follows drops quickly, rises slowly (a loud noise between words
# should not raise the floor to speech level at once).
_FLOOR_FALL = 0.1
_FLOOR_RISE = 0.01


@dataclass(frozen=True, eq=False)
class SpeechStarted:
    """Speech onset confirmed. ``stream_time`` is where the voice began (seconds of stream);
    ``audio`` is the preroll plus the speech so far, for recognizers fed while it goes on."""

    stream_time: float
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16), repr=False)


@dataclass(frozen=True, eq=False)
class SpeechEnded:
    """A finished utterance.

    ``audio`` starts up to ``preroll_ms`` before ``start_time`` and ends at most ~200 ms after
    ``end_time`` (the end of the last voiced frame). ``decided_time`` is when the endpointer
    knew the utterance was over, so ``decided_time - end_time`` is the endpointing latency.
    """

    audio: np.ndarray = field(repr=False)
    start_time: float
    end_time: float
    decided_time: float


VadEvent = SpeechStarted | SpeechEnded


class Endpointer:
    """Feed frames of exactly ``config.frame_ms``; get ``SpeechStarted``/``SpeechEnded`` events.

    Stream time counts the audio fed so far. Gaps in the caller's audio are the feeder's
    business: it should feed silence frames so that time keeps moving.
    """

    def __init__(self, config: VadConfig, sample_rate: int = 16000) -> None:
        if sample_rate not in _VAD_RATES:
            raise ValueError(f"webrtcvad needs a sample rate in {_VAD_RATES}, got {sample_rate}")
        if config.frame_ms not in (10, 20, 30):
            raise ValueError(f"webrtcvad needs 10, 20 or 30 ms frames, got {config.frame_ms}")
        self._config = config
        self._rate = sample_rate
        self._frame_samples = sample_rate * config.frame_ms // 1000
        self._vad = webrtcvad.Vad(config.aggressiveness)
        ms = config.frame_ms
        self._min_speech_frames = max(1, -(-config.min_speech_ms // ms))
        self._onset_gap_frames = max(1, _ONSET_GAP_MS // ms)
        self._hang_frames = max(1, -(-config.hang_time_ms // ms))
        self._max_tail_frames = _MAX_TAIL_MS // ms
        self._max_frames = max(1, int(config.max_utterance_s * 1000) // ms)
        self._preroll: deque[np.ndarray] = deque(maxlen=config.preroll_ms // ms)
        self._samples_fed = 0
        self._floor: float | None = None
        self._clear()

    @property
    def in_speech(self) -> bool:
        """True between ``SpeechStarted`` and the matching ``SpeechEnded``."""
        return self._started

    @property
    def stream_time(self) -> float:
        return self._samples_fed / self._rate

    @property
    def frame_samples(self) -> int:
        return self._frame_samples

    def reset(self) -> None:
        """Forget any utterance in progress and the preroll. The stream clock keeps running,
        because it is the caller's timeline."""
        self._preroll.clear()
        self._floor = None
        self._clear()

    def _clear(self) -> None:
        self._started = False
        # Frames from the first voiced frame of the (candidate) utterance onward.
        self._frames: list[np.ndarray] = []
        self._before: list[np.ndarray] = []  # preroll snapshot at onset
        self._onset_sample = 0
        self._voiced_count = 0
        self._unvoiced_run = 0

    def feed(self, frame: np.ndarray) -> list[VadEvent]:
        if frame.ndim != 1 or frame.shape[0] != self._frame_samples:
            raise ValueError(
                f"expected a frame of {self._frame_samples} samples "
                f"({self._config.frame_ms} ms at {self._rate} Hz), got shape {frame.shape}"
            )
        if frame.dtype != np.int16:
            raise ValueError(f"expected int16 samples, got {frame.dtype}")
        frame_start = self._samples_fed
        self._samples_fed += self._frame_samples
        voiced = self._is_voice(frame)

        if not self._frames:
            if voiced:
                self._before = list(self._preroll)
                self._onset_sample = frame_start
                self._frames = [frame]
                self._voiced_count = 1
                self._unvoiced_run = 0
                return self._maybe_start()
            self._preroll.append(frame)
            return []

        self._frames.append(frame)
        if voiced:
            self._voiced_count += 1
            self._unvoiced_run = 0
        else:
            self._unvoiced_run += 1

        if not self._started:
            if self._unvoiced_run >= self._onset_gap_frames:
                self._discard_candidate()
                return []
            return self._maybe_start()

        if self._unvoiced_run >= self._hang_frames:
            return [self._end(cut=False)]
        if len(self._frames) >= self._max_frames:
            return [self._end(cut=True)]
        return []

    def _is_voice(self, frame: np.ndarray) -> bool:
        energy = float(np.mean(np.square(frame, dtype=np.float64)))
        if not self._vad.is_speech(frame.tobytes(), self._rate):
            if self._floor is None:
                self._floor = energy
            else:
                rate = _FLOOR_FALL if energy < self._floor else _FLOOR_RISE
                self._floor += rate * (energy - self._floor)
            return False
        # No background heard yet (caller spoke at once): trust webrtcvad alone.
        # The floor of 1.0 keeps digital silence (energy 0) from making everything "loud".
        return self._floor is None or energy > _SNR_FACTOR * max(self._floor, 1.0)

    def _maybe_start(self) -> list[VadEvent]:
        if self._voiced_count < self._min_speech_frames:
            return []
        self._started = True
        so_far = np.concatenate([*self._before, *self._frames])
        events: list[VadEvent] = [SpeechStarted(self._onset_sample / self._rate, so_far)]
        # With a tiny max_utterance_s the onset itself may already hit the limit.
        if len(self._frames) >= self._max_frames:
            events.append(self._end(cut=True))
        return events

    def _discard_candidate(self) -> None:
        # A burst too short to be speech: its frames become ordinary preroll history.
        self._preroll.extend(self._frames)
        self._frames = []
        self._before = []
        self._voiced_count = 0
        self._unvoiced_run = 0

    def _end(self, *, cut: bool) -> SpeechEnded:
        decided = self._samples_fed / self._rate
        if cut:
            # Cut mid-speech: everything fed so far belongs to this utterance.
            voiced_frames = self._frames
            tail: list[np.ndarray] = []
        else:
            voiced_frames = self._frames[: len(self._frames) - self._unvoiced_run]
            tail = self._frames[len(voiced_frames) :][: self._max_tail_frames]
        end_sample = self._onset_sample + len(voiced_frames) * self._frame_samples
        audio = np.concatenate([*self._before, *voiced_frames, *tail])
        event = SpeechEnded(
            audio=audio,
            start_time=self._onset_sample / self._rate,
            end_time=end_sample / self._rate,
            decided_time=decided,
        )
        # The trailing silence is history for the next utterance's preroll.
        self._preroll.clear()
        if not cut:
            self._preroll.extend(self._frames[len(voiced_frames) :])
        self._clear()
        return event
