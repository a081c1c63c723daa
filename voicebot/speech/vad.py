"""Voice activity on the caller's line: onsets, confirmed speech and pauses, frame by frame.

webrtcvad only says "voiced or not" per frame; this module adds what makes that usable on a
phone line: an onset needs ``onset_ms`` of voice (a click is not a voice), ``min_speech_ms``
of voice confirms speech (a cough is shorter), and ``pause_ms`` of non-voice is a pause, the
moment to look at what was said. Whether a pause ends the caller's turn is not decided here:
that is the turn-taking core's business (``voicebot.call.turns``).

It runs on the caller's own audio at the codec's rate (8 kHz for G.711), so no resampler
holds back the end of a word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import webrtcvad

from ..config import VadConfig
from ..media.levels import check_frame

# Onset tolerates this much non-voice inside a burst: webrtcvad often drops single frames
# in the middle of a real word, and that must not reset the min_speech_ms count.
_ONSET_GAP_MS = 100
_VAD_RATES = (8000, 16000, 32000, 48000)
# webrtcvad has its own hangover: after any loud burst it keeps saying "voiced" for ~150 ms of
# plain background, which would make a 60 ms click pass min_speech_ms. So a frame only counts
# as voice if it is also this much louder (mean square ratio, ~8 dB) than the background.
_SNR_FACTOR = 6.0
# Quieter frames are never voice (RMS 100 is about -50 dBFS; speech on a phone line is far
# louder), whatever webrtcvad says: before any background is known it is all we have.
_MIN_VOICE_ENERGY = 100.0**2
# A voiced frame is pitched (a vowel, a voiced consonant) when its normalized autocorrelation
# at some lag between 2.5 and 12.5 ms (400-80 Hz) reaches this. On tests/fixtures/turns
# (through G.711) speech frames have a median of 0.8-0.96; coughs, breath, hiss and crackle
# never exceed 0.36. Speech needs some pitched voice; noise has none.
_PITCH_CORRELATION = 0.6
# Voice without this much pitched audio is a sound (cough, breath, hiss), never speech.
MIN_PITCHED_MS = 60
# Background level tracking: follows drops quickly, rises slowly (a loud noise between words
# should not raise the floor to speech level at once).
_FLOOR_FALL = 0.1
_FLOOR_RISE = 0.01


@dataclass(frozen=True)
class VoiceBegan:
    """Voice began at ``stream_time`` (the first voiced frame), confirmed by ``onset_ms``."""

    stream_time: float


@dataclass(frozen=True)
class SpeechConfirmed:
    """The voice since the last onset has lasted ``min_speech_ms``: speech, not a sound."""

    stream_time: float


@dataclass(frozen=True)
class VoicePaused:
    """``pause_ms`` of non-voice after voice; the last voiced frame ended at ``voice_end``.
    ``pitched_s``: how much of the voice since the onset was pitched (speech has some)."""

    voice_end: float
    decided_time: float
    pitched_s: float = 0.0


def periodicity(window: np.ndarray, sample_rate: int) -> float:
    """The highest normalized autocorrelation of ``window`` at a lag of one pitch period
    (80-400 Hz): near 1 for a vowel, low for noise."""
    x = window.astype(np.float64)
    x -= x.mean()
    n = x.size
    low, high = sample_rate // 400, min(sample_rate // 80, n - 1)
    spectrum = np.fft.rfft(x, 2 * n)
    correlation = np.fft.irfft(spectrum * np.conj(spectrum))[: high + 1]
    squares = x * x
    head = np.cumsum(squares)  # energy of x[:n - lag] is head[n - 1 - lag]
    tail = np.cumsum(squares[::-1])[::-1]  # energy of x[lag:]
    lags = np.arange(low, high + 1)
    scale = np.sqrt(head[n - 1 - lags] * tail[lags]) + 1e-9
    return float(np.max(correlation[lags] / scale))


VadEvent = VoiceBegan | SpeechConfirmed | VoicePaused


class VoiceSegmenter:
    """Feed frames of exactly ``config.frame_ms``; get onsets, confirmations and pauses.

    Stream time counts the audio fed so far. Gaps in the caller's audio are the feeder's
    business: it should feed silence frames so that time keeps moving.
    """

    def __init__(self, config: VadConfig, sample_rate: int = 8000) -> None:
        if sample_rate not in _VAD_RATES:
            raise ValueError(f"webrtcvad needs a sample rate in {_VAD_RATES}, got {sample_rate}")
        if config.frame_ms not in (10, 20, 30):
            raise ValueError(f"webrtcvad needs 10, 20 or 30 ms frames, got {config.frame_ms}")
        self._config = config
        self._rate = sample_rate
        self._frame_samples = sample_rate * config.frame_ms // 1000
        self._vad = webrtcvad.Vad(config.aggressiveness)
        ms = config.frame_ms
        self._onset_frames = max(1, -(-config.onset_ms // ms))
        self._confirm_frames = max(1, -(-config.min_speech_ms // ms))
        self._onset_gap_frames = max(1, _ONSET_GAP_MS // ms)
        self._pause_frames = max(1, -(-config.pause_ms // ms))
        self._max_frames = max(1, int(config.max_utterance_s * 1000) // ms)
        self._samples_fed = 0
        self._floor: float | None = None
        self._in_voice = False  # between VoiceBegan and VoicePaused
        self._candidate_start: int | None = None  # first voiced sample of a possible onset
        self._voiced = 0  # voiced frames since the candidate began
        self._unvoiced_run = 0
        self._voice_end = 0  # sample where the last voiced frame ended
        self._confirmed = False
        self._frames_in_voice = 0
        self._pitched = 0  # pitched frames since the onset
        self._min_pitched = max(1, -(-MIN_PITCHED_MS // ms))
        self._last_frame = np.zeros(self._frame_samples, dtype=np.int16)

    @property
    def stream_time(self) -> float:
        return self._samples_fed / self._rate

    @property
    def frame_samples(self) -> int:
        return self._frame_samples

    @property
    def in_voice(self) -> bool:
        return self._in_voice

    def feed(self, frame: np.ndarray) -> list[VadEvent]:
        return self.advance(*self.measure(frame))

    def measure(self, frame: np.ndarray) -> tuple[bool, bool]:
        """Whether ``frame`` (the next one) is voice, and pitched voice, without moving on:
        a policy may overrule the verdict before ``advance`` counts it (call/voices.py takes
        a voice far under the caller's for the room's)."""
        check_frame(frame, self._frame_samples, self._config.frame_ms, self._rate)
        voiced = self._is_voice(frame)
        window = np.concatenate([self._last_frame, frame])
        self._last_frame = frame
        pitched = voiced and periodicity(window, self._rate) >= _PITCH_CORRELATION
        return voiced, pitched

    def advance(self, voiced: bool, pitched: bool) -> list[VadEvent]:
        """Count one frame of the given kind (normally what ``measure`` said of it)."""
        frame_start = self._samples_fed
        self._samples_fed += self._frame_samples
        pitched = voiced and pitched
        if self._in_voice:
            return self._during_voice(voiced, pitched)
        return self._before_voice(voiced, pitched, frame_start)

    def _before_voice(self, voiced: bool, pitched: bool, frame_start: int) -> list[VadEvent]:
        if voiced:
            if self._candidate_start is None:
                self._candidate_start = frame_start
                self._voiced = 0
                self._pitched = 0
            self._voiced += 1
            self._pitched += pitched
            self._unvoiced_run = 0
            self._voice_end = self._samples_fed
            if self._voiced >= self._onset_frames:
                self._in_voice = True
                self._confirmed = False
                self._frames_in_voice = 0
                events: list[VadEvent] = [VoiceBegan(self._candidate_start / self._rate)]
                if self._speech_so_far():
                    self._confirmed = True
                    events.append(SpeechConfirmed(self.stream_time))
                return events
        elif self._candidate_start is not None:
            self._unvoiced_run += 1
            if self._unvoiced_run >= self._onset_gap_frames:
                self._candidate_start = None  # too short for a voice: a click
        return []

    def _during_voice(self, voiced: bool, pitched: bool) -> list[VadEvent]:
        self._frames_in_voice += 1
        events: list[VadEvent] = []
        if voiced:
            self._voiced += 1
            self._pitched += pitched
            self._unvoiced_run = 0
            self._voice_end = self._samples_fed
            if not self._confirmed and self._speech_so_far():
                self._confirmed = True
                events.append(SpeechConfirmed(self.stream_time))
        else:
            self._unvoiced_run += 1
        too_long = self._frames_in_voice >= self._max_frames
        if self._unvoiced_run >= self._pause_frames or too_long:
            # Too long without a pause: look at it anyway, as if the caller had paused.
            end = self._samples_fed if too_long and voiced else self._voice_end
            pitched_s = self._pitched * self._frame_samples / self._rate
            events.append(VoicePaused(end / self._rate, self.stream_time, pitched_s))
            self._in_voice = False
            self._candidate_start = None
            self._voiced = 0
            self._unvoiced_run = 0
        return events

    def _speech_so_far(self) -> bool:
        """Long enough, and pitched enough, to be speech rather than a cough or a hiss."""
        return self._voiced >= self._confirm_frames and self._pitched >= self._min_pitched

    def _is_voice(self, frame: np.ndarray) -> bool:
        energy = float(np.mean(np.square(frame, dtype=np.float64)))
        if energy < _MIN_VOICE_ENERGY or not self._vad.is_speech(frame.tobytes(), self._rate):
            if self._floor is None:
                self._floor = energy
            else:
                rate = _FLOOR_FALL if energy < self._floor else _FLOOR_RISE
                self._floor += rate * (energy - self._floor)
            return False
        # No background heard yet (caller spoke at once): trust webrtcvad alone.
        # The floor of 1.0 keeps digital silence (energy 0) from making everything "loud".
        return self._floor is None or energy > _SNR_FACTOR * max(self._floor, 1.0)
