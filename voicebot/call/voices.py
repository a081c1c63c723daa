"""Whose voice is it: the caller's, or the room's? A pure policy over measured frame levels.

A caller is the loudest voice on their own line: their mouth is a few centimetres from the
microphone, a TV or a colleague is metres away. So per call this learns, from the level of
each 20 ms frame and webrtcvad's verdict on it, three levels (dBFS, RMS):

- the **noise floor**: the steady background of unvoiced frames;
- the **background voice**: the active level of the voiced frames of the last ``memory_s`` that
  were not the caller's: not in a caller stretch, not in a turn the core took (until a turn is
  taken, the caller's own voice counts here too, which only ever makes the background look
  louder, so the policy separates less, never more);
- the **caller's speech**: the active level (power mean, as ITU-T P.56 measures speech) of the
  turns the turn core took as the caller's (``caller_turn``). Before the first one, the line's
  typical level stands in: -22 dBFS, the -19 dBm0 that ITU-T G.169/G.115 and RFC 7874 give
  for active speech on a phone line.

When the background voice sits ``separation_db`` or more under the caller's level, a frame is
the caller's only inside a *caller stretch*: it begins where ``promote_frames`` of the last
``promote_window`` frames reach the caller threshold ``max(caller - under_caller_db,
background + over_background_db)`` and ends ``hangover_s`` after the last frame that did.
Everything else voiced is background: it pauses no prompt, opens no turn and is not in the
recogniser's audio. Otherwise (nothing heard yet, or a background too loud to tell apart,
such as a TV 6 dB under the caller) every voiced frame is the caller's, as before this policy:
it never drops a caller it cannot tell from the room.

Why these numbers: over the single-talker files of ``tests/fixtures/turns`` (107 when
measured: Allison and espeak-ng, through G.711), a talker's loudest 20 ms frame is 3.0-10.0 dB
over their active level (median 7.1) and their 97th percentile 3.0-7.3 dB over, so two frames
within 100 ms at ``over_background_db`` = 10 over the background are beyond what a background
voice makes; two frames at their own level minus 8 dB (``under_caller_db``) come 20 ms after a
talker's first voiced frame in the median, 80 ms at the 90th percentile, 180 ms at worst, so a
caller 8 dB quieter than learned still gets through, a little later. The tests (test_voices.py)
check it on Allison with espeak-ng voices talking 3 to 22 dB under her.

Nothing here reads a clock or audio: the caller passes each frame's time and level.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np

FULL_SCALE = 32768.0
# The level of digital silence: a number, so that arithmetic on levels never meets -inf.
SILENCE_DB = -120.0
# The line's typical active speech level: -19 dBm0 (ITU-T G.169/G.115, RFC 7874 section 4),
# an RMS of 2600 in 16-bit PCM.
LINE_SPEECH_DB = 20 * math.log10(2600 / FULL_SCALE)
# The noise floor follows a quieter frame quickly, a louder one slowly (a word's tail or a
# door is not the floor).
_FLOOR_FALL = 0.3
_FLOOR_RISE = 0.02
# How often (in frames) the background level is recomputed from what was heard.
_BACKGROUND_EVERY = 5


def frame_db(frame: np.ndarray) -> float:
    """The RMS level of a frame of 16-bit samples in dBFS (a full-scale square wave is 0)."""
    if frame.size == 0:
        raise ValueError("frame_db needs at least one sample, got an empty frame")
    mean_square = float(np.mean(np.square(frame, dtype=np.float64)))
    if mean_square <= 0.0:
        return SILENCE_DB
    return max(SILENCE_DB, 10 * math.log10(mean_square / FULL_SCALE**2))


def _power(level_db: float) -> float:
    return 10 ** (level_db / 10)


def _db(power: float) -> float:
    return 10 * math.log10(power) if power > 0 else SILENCE_DB


def active_level(levels_db: list[float] | np.ndarray) -> float:
    """The power mean of frame levels, in dB: speech's active level when they are its voiced
    frames."""
    levels = np.asarray(levels_db, dtype=np.float64)
    if levels.size == 0:
        raise ValueError("active_level needs at least one frame level")
    return _db(float(np.mean(np.power(10.0, levels / 10))))


class Whose(Enum):
    CALLER = "caller"
    BACKGROUND = "background"


@dataclass(frozen=True)
class Verdict:
    """Whose voice began at ``at`` (the first frame of the stretch, stream time), and why."""

    at: float
    whose: Whose
    level_db: float  # the loudest frame of the stretch so far
    reason: str  # for the log: levels and rules only, never what was said
    # The voice of this stretch before this time was the room's (the caller's voice rose out
    # of it): the listener drops it from the recogniser's audio.
    room_until: float | None = None


@dataclass(frozen=True)
class Heard:
    """What one frame is.

    ``caller``: the caller's voice (what the segmenter should take as voiced);
    ``keep``: the frame belongs in the recogniser's audio (the caller's stretches, hangover
    included; every frame while the policy cannot separate);
    ``verdict``: set on the frame where a voiced stretch was judged (once when it begins, again
    if the caller's voice rises out of a stretch judged background)."""

    caller: bool
    keep: bool
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Levels:
    """What the policy has learned so far (dBFS; None while unknown)."""

    noise_db: float | None
    background_db: float | None
    caller_db: float | None  # learned from the caller's turns; None before the first
    reference_db: float  # the caller's level, or the line's typical level before that
    separating: bool  # False: every voiced frame is taken as the caller's


@dataclass(frozen=True)
class VoicesConfig:
    frame_s: float = 0.02
    # Before the caller's first turn, their level is taken to be the line's typical one.
    line_db: float = LINE_SPEECH_DB
    # Voice is told apart only when the background sits at least this far under the caller.
    separation_db: float = 10.0
    # A frame is loud enough for the caller when it reaches their level minus
    # ``under_caller_db`` and the background plus ``over_background_db`` (the higher of the
    # two).
    under_caller_db: float = 8.0
    over_background_db: float = 10.0
    # During a prompt, before the caller's first turn and while the room is not known, a voice
    # is the caller's when it reaches the line's level minus this: a caller barging in speaks
    # up (on the turn set, callers' loud frames reach -12 to -16 dBFS), a voice 16 dB under
    # them peaks at -28 to -30. A quieter caller is heard once the prompt is over.
    guard_under_line_db: float = 4.0
    # The caller's stretch begins where this many of the last ``promote_window`` frames were
    # loud enough (one frame is a background peak or a click, two close ones a vowel).
    promote_frames: int = 2
    promote_window: int = 5
    # ... and ends this long after the last frame that was (word edges and short gaps
    # between words stay in).
    hangover_s: float = 0.3
    # A stretch that has not reached the caller's level after this much voice is judged
    # background (a caller's word reaches it sooner; see the module docstring).
    judge_s: float = 0.2
    # While nothing tells the room apart, a voice that rises this far over the voice of the
    # last ``rise_window_s`` (two frames within 100 ms; a talker's own loud frames are at most
    # 10 dB over their level), when that held ``rise_after_s`` of voice sitting
    # ``separation_db`` or more under the line, is the caller speaking over the room: what
    # came before was the room's.
    rise_db: float = 13.0
    rise_after_s: float = 0.3
    rise_window_s: float = 2.0
    # Unvoiced time that separates two stretches (the segmenter's onset gap).
    stretch_gap_s: float = 0.1
    # A caller stretch's verdict dates back to the stretch's start, at most this far (the
    # listener's preroll): continuous background would otherwise date it seconds back.
    lookback_s: float = 0.3
    # Background voice is trusted once this much of it was heard, within ``memory_s``.
    settle_s: float = 2.0
    memory_s: float = 20.0
    # A taken turn moves the caller's level this far towards its own level, and down by at
    # most ``max_fall_db`` per turn (one quiet turn or a background-heavy one is not the caller).
    follow: float = 0.5
    max_fall_db: float = 6.0

    def __post_init__(self) -> None:
        positive = {
            "frame_s": self.frame_s,
            "separation_db": self.separation_db,
            "hangover_s": self.hangover_s,
            "judge_s": self.judge_s,
            "settle_s": self.settle_s,
            "memory_s": self.memory_s,
            "max_fall_db": self.max_fall_db,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"voices: {name} must be above 0, got {value}")
        if not 1 <= self.promote_frames <= self.promote_window:
            raise ValueError(
                f"voices: promote_frames must be 1..promote_window ({self.promote_window}), "
                f"got {self.promote_frames}"
            )
        if not 0 < self.follow <= 1:
            raise ValueError(f"voices: follow must be in (0, 1], got {self.follow}")
        if self.memory_s < self.settle_s:
            raise ValueError(
                f"voices: memory_s ({self.memory_s}) must be at least settle_s ({self.settle_s})"
            )


@dataclass
class _Stretch:
    start: float
    voiced: int = 0
    gap_frames: int = 0
    peak_db: float = SILENCE_DB
    judged: Whose | None = None


class CallerVoice:
    """Per call: feed every frame (``frame``), tell it the caller's turns (``caller_turn``)."""

    def __init__(self, config: VoicesConfig | None = None) -> None:
        self._config = config or VoicesConfig()
        cfg = self._config
        self._noise_db: float | None = None
        self._caller_db: float | None = None
        self._background_db: float | None = None
        # Voiced frames heard as background evidence: (time, level), oldest first.
        self._evidence: deque[tuple[float, float]] = deque()
        # Recent frames, for learning the caller's level from a turn: (time, level, voiced,
        # pitched, caller).
        self._history: deque[tuple[float, float, bool, bool, bool]] = deque()
        self._frames = 0
        self._last_at: float | None = None
        self._recent_loud: deque[bool] = deque(maxlen=cfg.promote_window)
        self._in_caller = False
        self._last_loud_at = -math.inf
        self._stretch: _Stretch | None = None
        # A voice was judged the room's: until the caller's first turn, the guard stays on.
        self._room_talked = False
        # The room's level was learned from a caller rising out of it (not from settle_s).
        self._contrasted = False
        self._rise_after_frames = max(1, round(cfg.rise_after_s / cfg.frame_s))
        self._settle_frames = max(1, round(cfg.settle_s / cfg.frame_s))
        self._gap_frames = max(1, round(cfg.stretch_gap_s / cfg.frame_s))
        self._judge_frames = max(1, round(cfg.judge_s / cfg.frame_s))

    # -- what is known --------------------------------------------------------------------

    @property
    def levels(self) -> Levels:
        return Levels(
            noise_db=self._noise_db,
            background_db=self._background_db,
            caller_db=self._caller_db,
            reference_db=self._reference(),
            separating=self._separating(),
        )

    def _reference(self) -> float:
        return self._caller_db if self._caller_db is not None else self._config.line_db

    def _separating(self) -> bool:
        background = self._background_db
        return background is not None and self._reference() - background >= (
            self._config.separation_db
        )

    def threshold_db(self) -> float | None:
        """The level a frame needs to be the caller's (None: every voiced frame is)."""
        if not self._separating():
            return None
        assert self._background_db is not None
        cfg = self._config
        return max(
            self._reference() - cfg.under_caller_db,
            self._background_db + cfg.over_background_db,
        )

    def _guard_db(self) -> float:
        """The level a voice needs to be the caller's during a prompt while the room cannot
        be told apart: near their learned level, or close to the line's before that."""
        cfg = self._config
        if self._caller_db is not None:
            return self._caller_db - cfg.under_caller_db
        return cfg.line_db - cfg.guard_under_line_db

    # -- per frame -----------------------------------------------------------------------

    def frame(
        self, at: float, level_db: float, voiced: bool, pitched: bool = True, guarded: bool = False
    ) -> Heard:
        """One frame that began at ``at`` (stream time, seconds), ``level_db`` its RMS level,
        ``voiced`` webrtcvad's (and the segmenter's) verdict, ``pitched`` whether it is
        periodic (vowel-like; pitched frames are preferred for the caller's level).

        ``guarded``: a prompt is playing. Until the policy can separate, a voice must then
        come near the caller's level (the line's, before their first turn) to be theirs: a
        barge-in needs the caller, and voice far under the line that starts during a
        greeting is the room. Once such a voice was judged the room's, the guard stays on
        after the prompt until the caller's first turn (or a no-input: a caller quieter than
        the guard is then heard); a room that never talked leaves any voice the caller's."""
        if not math.isfinite(at) or not math.isfinite(level_db):
            raise ValueError(f"voices: frame time and level must be finite, got {at}, {level_db}")
        if self._last_at is not None and at <= self._last_at:
            raise ValueError(f"voices: frame times must increase, got {at} after {self._last_at}")
        self._last_at = at
        self._frames += 1
        if not voiced:
            self._follow_floor(level_db)
        self._forget_before(at - self._config.memory_s)
        if self._frames % _BACKGROUND_EVERY == 0:
            self._background_db = self._background_level()
        threshold = self.threshold_db()
        if threshold is None and (guarded or (self._room_talked and self._caller_db is None)):
            threshold = self._guard_db()
        promoted = False
        room_until = self._rise(at, level_db) if threshold is None and voiced else None
        if room_until is not None:
            threshold = self.threshold_db()  # the room is known now
        if room_until is not None and threshold is not None:
            self._in_caller = promoted = True
            self._last_loud_at = at
            self._recent_loud.clear()
            caller, keep = True, True
        elif threshold is None:
            # Cannot separate: today's behaviour, every voiced frame is the caller's, and all
            # of it is evidence of what the room sounds like until a turn claims it.
            self._in_caller = voiced
            self._recent_loud.clear()
            if voiced:
                self._last_loud_at = at
                self._evidence.append((at, level_db))
            caller, keep = voiced, True
        else:
            loud = voiced and level_db >= threshold
            self._recent_loud.append(loud)
            if loud:
                self._last_loud_at = at
            if self._in_caller and at - self._last_loud_at >= self._config.hangover_s:
                self._in_caller = False
            if not self._in_caller and sum(self._recent_loud) >= self._config.promote_frames:
                self._in_caller = promoted = True
            caller, keep = voiced and self._in_caller, self._in_caller
            if voiced and not caller:
                self._evidence.append((at, level_db))
        self._history.append((at, level_db, voiced, pitched, caller))
        verdict = self._follow_stretch(at, level_db, voiced, caller, threshold, promoted)
        if room_until is not None and threshold is not None:
            assert self._stretch is not None and self._background_db is not None
            rise = self._stretch.peak_db - self._background_db
            reason = (
                f"rose {rise:.0f} dB over the room's voice before it: {self._over_background()}"
            )
            verdict = Verdict(room_until, Whose.CALLER, self._stretch.peak_db, reason, room_until)
        return Heard(caller=caller, keep=keep, verdict=verdict)

    def _rise(self, at: float, level_db: float) -> float | None:
        """Whether this voiced frame makes the caller's voice rising out of the room's (see
        ``rise_db``): then the room is learned from the voice before the rise, and the time
        the rise began is returned."""
        cfg = self._config
        # The voiced frames of the window, newest first: only its end of the history is read
        # (this runs on every voiced frame of a call whose room is not known).
        window: list[tuple[float, float]] = []
        for t, level, voiced, _, _ in reversed(self._history):
            if t < at - cfg.rise_window_s:
                break
            if voiced:
                window.append((t, level))
        window.reverse()
        newest = cfg.promote_window - 1  # the frames judged with this one
        if len(window) <= newest:
            return None  # (the frames before them are older than the window)
        before = [level for _, level in window[: len(window) - newest]] if newest else []
        recent = [*window[len(window) - newest :], (at, level_db)]
        if len(before) < self._rise_after_frames:
            return None
        base = active_level(before)
        if base > cfg.line_db - cfg.separation_db:
            return None
        loud = [t for t, level in recent if level >= base + cfg.rise_db and t > at - 0.1]
        if len(loud) < cfg.promote_frames:
            return None
        rise_at = loud[0]
        # The room is the voice before the rise; nothing of the caller's in it.
        self._evidence = deque((t, level) for t, level in self._evidence if t < rise_at)
        self._contrasted = self._room_talked = True
        self._background_db = self._background_level()
        return rise_at

    def _follow_floor(self, level_db: float) -> None:
        if self._noise_db is None:
            self._noise_db = level_db
        else:
            rate = _FLOOR_FALL if level_db < self._noise_db else _FLOOR_RISE
            self._noise_db += rate * (level_db - self._noise_db)

    def _follow_stretch(
        self,
        at: float,
        level_db: float,
        voiced: bool,
        caller: bool,
        threshold: float | None,
        promoted: bool,
    ) -> Verdict | None:
        """The stretch of voice this frame is in, and its verdict when one is due: CALLER as
        soon as the caller's voice is in it (again), BACKGROUND once ``judge_s`` of it has
        passed without."""
        stretch = self._stretch
        if not voiced:
            if stretch is not None:
                stretch.gap_frames += 1
                if stretch.gap_frames >= self._gap_frames:
                    self._stretch = None
            return None
        if stretch is None:
            stretch = self._stretch = _Stretch(start=at)
        stretch.voiced += 1
        stretch.gap_frames = 0
        stretch.peak_db = max(stretch.peak_db, level_db)
        if caller:
            if stretch.judged is Whose.CALLER:
                return None
            first = stretch.judged is None
            stretch.judged = Whose.CALLER
            if threshold is None:
                reason = self._cannot_separate_reason()
            elif promoted:
                reason = f"reached {threshold:.0f} dBFS, {self._over_background()}"
            else:
                reason = f"within {self._config.hangover_s:g} s of the caller's voice"
            # Inside a long stretch of background the caller's voice began only lately.
            start = stretch.start if first else max(stretch.start, at - self._config.lookback_s)
            return Verdict(start, Whose.CALLER, stretch.peak_db, reason)
        if stretch.judged is Whose.CALLER:
            # The caller's stretch is over (hangover passed) while the room goes on talking.
            stretch.judged = Whose.BACKGROUND
            return None
        if stretch.judged is not None or stretch.voiced < self._judge_frames:
            return None
        assert threshold is not None
        stretch.judged = Whose.BACKGROUND
        self._room_talked = True
        reason = f"peak {stretch.peak_db:.0f} dBFS, under {threshold:.0f}: " + (
            self._over_background()
        )
        return Verdict(stretch.start, Whose.BACKGROUND, stretch.peak_db, reason)

    def _over_background(self) -> str:
        if self._caller_db is not None:
            caller = f"caller {self._caller_db:.0f} dBFS"
        else:
            caller = f"caller not heard yet, line {self._config.line_db:.0f} dBFS"
        if self._background_db is None:
            return f"{caller}, during a prompt, background voice not known yet"
        return (
            f"{caller}, background voice {self._background_db:.0f} dBFS "
            f"({self._reference() - self._background_db:.0f} dB under)"
        )

    def _cannot_separate_reason(self) -> str:
        if self._background_db is None:
            return "no background voice known yet: every voice is the caller's"
        return (
            f"background voice {self._background_db:.0f} dBFS is within "
            f"{self._config.separation_db:.0f} dB of the caller's "
            f"{self._reference():.0f}: every voice is the caller's"
        )

    # -- what the turn core tells it -----------------------------------------------------

    def caller_turn(self, start: float, end: float) -> float | None:
        """The turn core took the voice between ``start`` and ``end`` (stream time) as the
        caller's turn: learn their level from it, and stop counting it as background.
        Returns the caller's level now (None when the span held no voiced frame)."""
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise ValueError(f"voices: a turn needs start <= end, got {start}..{end}")
        frames = [
            (level, pitched, caller)
            for at, level, voiced, pitched, caller in self._history
            if voiced and start - self._config.frame_s < at < end
        ]
        # The caller's own frames if the policy found any, pitched ones if there are: a turn
        # taken over a background must not teach the background's level.
        for chosen in (
            [level for level, pitched, caller in frames if caller and pitched],
            [level for level, _, caller in frames if caller],
            [level for level, _, _ in frames],
        ):
            if chosen:
                self._learn_caller(active_level(chosen))
                break
        kept = [(at, level) for at, level in self._evidence if not start <= at <= end]
        self._evidence = deque(kept)
        self._background_db = self._background_level()
        return self._caller_db

    def _learn_caller(self, turn_db: float) -> None:
        cfg = self._config
        if self._caller_db is None:
            self._caller_db = turn_db
            return
        moved = self._caller_db + cfg.follow * (turn_db - self._caller_db)
        self._caller_db = max(moved, self._caller_db - cfg.max_fall_db)

    def no_input(self) -> None:
        """The dialog waited and heard nothing from the caller. If that is because their
        voice was taken for the background, stop separating until it is heard again:
        the background evidence so far is forgotten."""
        self._evidence.clear()
        self._background_db = None
        self._room_talked = self._contrasted = False

    # -- the background level ------------------------------------------------------------

    def _forget_before(self, oldest: float) -> None:
        while self._evidence and self._evidence[0][0] < oldest:
            self._evidence.popleft()
        while self._history and self._history[0][0] < oldest:
            self._history.popleft()

    def _background_level(self) -> float | None:
        enough = self._rise_after_frames if self._contrasted else self._settle_frames
        if len(self._evidence) < enough:
            return None
        return active_level(np.fromiter((level for _, level in self._evidence), np.float64))
