"""Whose voice: the caller's or the room's, from frame levels (voicebot.call.voices).

Two halves: tables of synthetic level sequences (a voice is a level with a fixed syllable
pattern on it) with the verdicts they must get, and real speech: Allison as the caller with
espeak-ng voices from tests/fixtures/turns talking behind her at 10, 16 and 22 dB under her,
dithered with several seeds, through G.711, framed and voiced by the listener's own
segmenter at 8 kHz.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from tests.support.audio import TURNS
from voicebot.call.voices import (
    LINE_SPEECH_DB,
    SILENCE_DB,
    CallerVoice,
    Heard,
    VoicesConfig,
    Whose,
    active_level,
    frame_db,
)
from voicebot.capture.wav import read_wav
from voicebot.config import VadConfig
from voicebot.media.g711 import ulaw_decode, ulaw_encode
from voicebot.speech.vad import VoiceSegmenter
from voicebot.tools.takes import take

FRAME_S = 0.02
# dB around a voice's level, frame after frame: vowels over it, consonants under.
SYLLABLES = (-4.0, 0.0, 3.0, 1.0, -2.0)
LINE_NOISE_DB = -70.0

Frame = tuple[float, bool]  # (level dBFS, voiced)


def voice(seconds: float, level_db: float) -> list[Frame]:
    count = round(seconds / FRAME_S)
    return [(level_db + SYLLABLES[i % len(SYLLABLES)], True) for i in range(count)]


def quiet(seconds: float) -> list[Frame]:
    return [(LINE_NOISE_DB, False)] * round(seconds / FRAME_S)


def talk(seconds: float, level_db: float) -> list[Frame]:
    """Someone talking on and on: 0.8 s of voice, 0.2 s of breath, over and over."""
    frames: list[Frame] = []
    while len(frames) * FRAME_S < seconds - 1e-9:
        frames += voice(0.8, level_db) + quiet(0.2)
    return frames


class Call:
    """A policy and the clock of the frames fed to it."""

    def __init__(self, config: VoicesConfig | None = None) -> None:
        self.policy = CallerVoice(config)
        self.now = 0.0

    def play(self, frames: list[Frame], guarded: bool = False) -> list[tuple[float, Heard]]:
        heard = []
        for level, voiced in frames:
            heard.append((self.now, self.policy.frame(self.now, level, voiced, True, guarded)))
            self.now = round(self.now + FRAME_S, 6)
        return heard

    def caller_says(self, seconds: float, level_db: float) -> list[tuple[float, Heard]]:
        """The caller speaks and the turn core takes it as their turn."""
        start = self.now
        heard = self.play(voice(seconds, level_db))
        self.policy.caller_turn(start, self.now)
        return heard + self.play(quiet(0.3))


def first_verdict(heard: list[tuple[float, Heard]]) -> Whose | None:
    return next((h.verdict.whose for _, h in heard if h.verdict is not None), None)


def primed(caller_db: float | None, background_db: float | None) -> Call:
    """A call that has heard ``background_db`` talk for 3 s and, when ``caller_db`` is
    given, one turn of the caller's at that level."""
    call = Call()
    if background_db is not None:
        call.play(talk(3.0, background_db))
    if caller_db is not None:
        call.caller_says(1.0, caller_db)
        if background_db is not None:
            call.play(talk(1.0, background_db))
    call.play(quiet(0.4))
    return call


# -- verdicts on a voice onset ------------------------------------------------------------

# caller, background, the onset's level, verdict, why
Onset = tuple[float | None, float | None, float, Whose, str]

ONSETS: list[Onset] = [
    (-20.0, -36.0, -20.0, Whose.CALLER, "the caller at their level"),
    (-20.0, -36.0, -36.0, Whose.BACKGROUND, "the room at its level, 16 dB under"),
    (-20.0, -36.0, -26.0, Whose.CALLER, "the caller 6 dB quieter than before"),
    (-20.0, -36.0, -30.0, Whose.BACKGROUND, "10 dB under the caller, 6 over the room"),
    (-20.0, -42.0, -28.0, Whose.CALLER, "8 dB quieter: under_caller_db"),
    (-20.0, -42.0, -40.0, Whose.BACKGROUND, "the room, 22 dB under"),
    (-20.0, -26.0, -26.0, Whose.CALLER, "a TV 6 dB under the caller: no telling apart"),
    (-20.0, -26.0, -20.0, Whose.CALLER, "the caller beside a loud TV"),
    (-20.0, None, -40.0, Whose.CALLER, "no other voice was ever heard"),
    (None, -40.0, -38.0, Whose.BACKGROUND, "before the caller: steady talk under the line"),
    (None, -40.0, -24.0, Whose.CALLER, "before the caller: a voice at the line's level"),
    (None, -30.0, -30.0, Whose.CALLER, "before the caller: talk only 8 dB under the line"),
    (None, None, -45.0, Whose.CALLER, "nothing known yet: every voice is the caller's"),
]


# -- during a prompt (guarded): before the room is known, a barge-in needs the caller's level

GUARDED_ONSETS: list[Onset] = [
    (None, None, -38.0, Whose.BACKGROUND, "nothing known: a voice 16 dB under the line"),
    (None, None, -44.0, Whose.BACKGROUND, "nothing known: a voice 22 dB under the line"),
    (None, None, -24.0, Whose.CALLER, "nothing known: a voice at the line's level"),
    (None, None, -25.0, Whose.CALLER, "nothing known: a caller 3 dB under the line"),
    (None, None, -32.0, Whose.BACKGROUND, "nothing known: 10 dB under the line"),
    (-20.0, None, -32.0, Whose.BACKGROUND, "12 dB under the caller heard before"),
    (-30.0, None, -32.0, Whose.CALLER, "a quiet caller heard before, at their level"),
    (-20.0, None, -22.0, Whose.CALLER, "the caller heard before"),
    (-20.0, -26.0, -26.0, Whose.CALLER, "a TV 6 dB under the caller: no telling apart"),
    (None, -40.0, -38.0, Whose.BACKGROUND, "the room, learned: as without a prompt"),
]


@pytest.mark.parametrize(
    ("onset", "guarded"), [(row, False) for row in ONSETS] + [(row, True) for row in GUARDED_ONSETS]
)
def test_onset_verdict(onset: Onset, guarded: bool) -> None:
    caller_db, background_db, onset_db, whose, why = onset
    call = primed(caller_db, background_db)
    heard = call.play(voice(0.6, onset_db), guarded=guarded)
    assert first_verdict(heard) is whose, why
    caller_frames = sum(h.caller for _, h in heard)
    if whose is Whose.CALLER:
        assert caller_frames >= len(heard) - 3, why  # at most the frames before the vowel
    else:
        assert caller_frames == 0, why
        assert not any(h.keep for _, h in heard), why


def test_a_room_heard_talking_during_the_greeting_stays_the_room_until_the_caller_speaks() -> None:
    call = Call()
    during = call.play(voice(0.6, -38.0) + quiet(0.4), guarded=True)
    after = call.play(voice(0.6, -38.0) + quiet(0.4))  # less than settle_s of the room
    caller = call.play(voice(0.6, -19.0))
    assert [first_verdict(h) for h in (during, after, caller)] == [
        Whose.BACKGROUND, Whose.BACKGROUND, Whose.CALLER,
    ]  # fmt: skip


def test_a_quiet_caller_in_a_talking_room_is_heard_after_a_no_input() -> None:
    call = Call()
    call.play(voice(0.6, -38.0) + quiet(0.4), guarded=True)
    ignored = call.play(voice(0.6, -34.0) + quiet(0.4))
    call.policy.no_input()
    heard = call.play(voice(0.6, -34.0))
    assert [first_verdict(ignored), first_verdict(heard)] == [Whose.BACKGROUND, Whose.CALLER]


def test_a_quiet_voice_in_a_quiet_room_is_the_callers_once_the_prompt_is_over() -> None:
    call = Call()
    call.play(quiet(1.0), guarded=True)
    assert first_verdict(call.play(voice(0.6, -38.0))) is Whose.CALLER


# -- a caller speaking up over a room nothing told apart yet --------------------------------

RISES = [
    # the voice before, how long, the voice after, room_until expected, why
    (-38.0, 1.0, -19.0, True, "the room 16 dB under the line, then the caller at their level"),
    (-44.0, 0.6, -22.0, True, "the room 22 dB under, then a caller at the line's level"),
    (-28.0, 1.0, -12.0, False, "a room only 6 dB under the line: no telling (not far under)"),
    (-38.0, 0.2, -19.0, False, "too little of the voice before to learn from"),
    (-30.0, 0.6, -26.0, False, "a caller speaking up by 4 dB is the same caller"),
]


@pytest.mark.parametrize(("before_db", "before_s", "after_db", "rises", "why"), RISES)
def test_a_voice_rising_far_over_the_room_is_the_caller_and_the_room_is_learned(
    before_db: float, before_s: float, after_db: float, rises: bool, why: str
) -> None:
    call = Call()
    call.play(quiet(0.5))
    call.play(voice(before_s, before_db))
    onset = call.now
    heard = call.play(voice(0.6, after_db))
    marks = [h.verdict.room_until for _, h in heard if h.verdict is not None]
    if not rises:
        assert not any(marks), why
        return
    (room_until,) = [m for m in marks if m is not None]
    assert onset <= room_until <= onset + 0.1, why
    assert all(h.caller and h.keep for t, h in heard if t >= room_until + 0.02), why
    # The room is known now: its voice after the caller's is not the caller's.
    assert call.policy.levels.separating, why
    after = call.play(quiet(0.4) + voice(0.6, before_db))
    assert not any(h.caller for _, h in after), why


def test_a_single_talker_never_rises_out_of_their_own_voice() -> None:
    """The turn set's single talkers (Allison, espeak-ng voices; menu, digits, yes/no,
    carrier phrases and pauses), three takes each: the rise rule never fires."""
    labels = json.loads((TURNS / "labels.json").read_text())
    names = [label["file"] for label in labels if label["kind"] in ("menu", "digits", "yes_no")]
    assert len(names) > 60
    for name in names:
        pcm, _ = read_wav(TURNS / name)
        for seed in (0, 1, 2):
            policy = CallerVoice()
            for n, (level, voiced, pitched) in enumerate(listen(take(pcm, seed).pcm)):
                heard = policy.frame(n * FRAME_S, level, voiced, pitched)
                assert heard.verdict is None or heard.verdict.room_until is None, (name, seed)


def test_verdicts_say_why_in_levels_only() -> None:
    call = primed(-20.0, -36.0)
    verdicts = [h.verdict for _, h in call.play(voice(0.6, -36.0) + quiet(0.4))]
    verdicts += [h.verdict for _, h in call.play(voice(0.6, -20.0))]
    background, caller = (v for v in verdicts if v is not None)
    assert background.whose is Whose.BACKGROUND
    assert "background voice -36 dBFS" in background.reason
    assert "caller -20 dBFS" in background.reason
    assert caller.whose is Whose.CALLER and "reached -26 dBFS" in caller.reason


# -- the caller's level, turn by turn ------------------------------------------------------

LEARNING = [
    # the caller's turns (levels), the caller's level after them
    ([-20.0], -20.0),
    ([-20.0, -30.0], -25.0),  # halfway, per turn
    ([-20.0, -40.0], -26.0),  # but down by at most 6 dB per turn
    ([-20.0, -40.0, -40.0, -40.0], -36.0),  # a caller who stays quieter is followed
    ([-30.0, -20.0], -25.0),
]


@pytest.mark.parametrize(("turns", "expected_db"), LEARNING)
def test_caller_level_follows_turns_slowly(turns: list[float], expected_db: float) -> None:
    call = Call()
    for level in turns:
        call.caller_says(1.0, level)
    learned = call.policy.levels.caller_db
    assert learned is not None
    # The syllable pattern puts a voice's active level 0.24 dB over its nominal level.
    assert learned == pytest.approx(expected_db + 0.24, abs=0.05)


def test_a_caller_who_grows_quieter_turn_by_turn_stays_the_caller() -> None:
    call = primed(-20.0, -42.0)
    # Down to 12 dB over the room (10 is where the room's own peaks reach).
    for level in (-24.0, -27.0, -30.0, -30.0):
        heard = call.play(voice(0.8, level))
        assert first_verdict(heard) is Whose.CALLER, level
        start = heard[0][0]
        call.policy.caller_turn(start, call.now)
        call.play(talk(1.0, -42.0) + quiet(0.3))
    assert call.policy.levels.separating


def test_a_turn_taken_over_the_background_learns_the_callers_frames_only() -> None:
    call = primed(-20.0, -40.0)
    start = call.now
    call.play(talk(1.0, -40.0) + voice(1.0, -20.0) + talk(1.0, -40.0))
    call.policy.caller_turn(start, call.now)
    assert call.policy.levels.caller_db == pytest.approx(-20.0, abs=1.0)


# -- the caller's stretch: hangover, lookback, the recogniser's audio ------------------------


def test_the_callers_stretch_ends_a_hangover_after_their_voice_though_the_room_talks_on() -> None:
    call = primed(-20.0, -36.0)
    caller = call.play(voice(1.0, -20.0))
    last_loud = max(at for at, h in caller if h.caller)
    room = call.play(voice(1.5, -36.0))  # no pause between them
    kept = [at for at, h in room if h.keep]
    assert kept and max(kept) <= last_loud + 0.3 + FRAME_S + 1e-9
    assert not any(h.caller for at, h in room if at > last_loud + 0.32)
    assert all(h.keep and h.caller for _, h in caller[3:])


def test_the_caller_rising_out_of_long_background_talk_dates_back_to_the_lookback() -> None:
    call = primed(-20.0, -36.0)
    call.play(voice(2.0, -36.0))  # the room, on and on, no pause before the caller
    heard = call.play(voice(0.6, -20.0))
    verdicts = [(at, h.verdict) for at, h in heard if h.verdict is not None]
    assert len(verdicts) == 1
    at, verdict = verdicts[0]
    assert verdict.whose is Whose.CALLER
    assert verdict.at == pytest.approx(at - 0.3)


def test_a_single_loud_frame_in_the_room_is_not_the_caller() -> None:
    call = primed(-20.0, -36.0)
    spike = [*voice(0.4, -36.0), (-18.0, True), *voice(0.4, -36.0)]
    assert not any(h.caller for _, h in call.play(spike))


def test_no_input_gives_up_separating_so_a_quiet_caller_is_heard() -> None:
    call = primed(None, -40.0)
    assert call.policy.levels.separating
    assert first_verdict(call.play(voice(0.6, -38.0))) is Whose.BACKGROUND
    call.play(quiet(0.4))
    call.policy.no_input()
    assert not call.policy.levels.separating
    assert first_verdict(call.play(voice(0.6, -38.0))) is Whose.CALLER


def test_the_background_is_forgotten_after_memory_s() -> None:
    call = primed(-20.0, -40.0)
    assert call.policy.levels.separating
    call.play(quiet(20.0))
    assert not call.policy.levels.separating
    assert call.policy.levels.background_db is None


def test_noise_floor_follows_unvoiced_frames() -> None:
    call = Call()
    call.play([(-60.0, False)] * 50 + [(-30.0, True)] * 50)
    noise = call.policy.levels.noise_db
    assert noise is not None and noise == pytest.approx(-60.0, abs=0.1)
    call.play([(-66.0, False)] * 50)
    assert call.policy.levels.noise_db == pytest.approx(-66.0, abs=0.5)


# -- inputs --------------------------------------------------------------------------------


def test_frame_db() -> None:
    assert frame_db(np.zeros(160, np.int16)) == SILENCE_DB
    square = np.tile(np.array([32767, -32767], np.int16), 80)
    assert frame_db(square) == pytest.approx(0.0, abs=0.01)
    assert frame_db(np.full(160, 2600, np.int16)) == pytest.approx(LINE_SPEECH_DB)
    assert LINE_SPEECH_DB == pytest.approx(-22.0, abs=0.05)
    with pytest.raises(ValueError, match="empty frame"):
        frame_db(np.zeros(0, np.int16))


def test_active_level_is_a_power_mean() -> None:
    assert active_level([-20.0, -20.0]) == pytest.approx(-20.0)
    assert active_level([-20.0, SILENCE_DB]) == pytest.approx(-20.0 - 10 * math.log10(2))
    with pytest.raises(ValueError, match="at least one"):
        active_level([])


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        ([(0.0, -30.0), (0.0, -30.0)], "must increase"),
        ([(0.0, math.nan)], "finite"),
        ([(math.inf, -30.0)], "finite"),
    ],
)
def test_bad_frames_are_refused(feed: list[tuple[float, float]], message: str) -> None:
    policy = CallerVoice()
    with pytest.raises(ValueError, match=message):
        for at, level in feed:
            policy.frame(at, level, voiced=True)


def test_bad_turns_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="start <= end"):
        CallerVoice().caller_turn(2.0, 1.0)
    with pytest.raises(ValueError, match="separation_db must be above 0"):
        VoicesConfig(separation_db=0)
    with pytest.raises(ValueError, match="promote_frames"):
        VoicesConfig(promote_frames=6, promote_window=5)
    with pytest.raises(ValueError, match="follow"):
        VoicesConfig(follow=0)
    with pytest.raises(ValueError, match="memory_s"):
        VoicesConfig(settle_s=5, memory_s=2)


def test_a_turn_with_no_voice_teaches_nothing() -> None:
    call = Call()
    call.play(quiet(1.0))
    assert call.policy.caller_turn(0.0, 1.0) is None
    assert call.policy.levels.caller_db is None


# -- real speech: Allison, with other voices in her room -----------------------------------

RATE = 8000
SAMPLES = RATE // 50
# Allison says these, 2.5 s apart, from CALLER_START_S on; each file has 0.1 s of silence
# before her first word.
CALLER_FILES = (
    "text-nobody-allison",
    "menu-extension-allison",
    "digits-4217",
    "number-120-allison",
)
CALLER_START_S = 7.0
LEAD_S = 0.1
# espeak-ng voices, one after another with short breaths between, from about 0.5 s on.
ROOM_FILES = (
    "text-card-en-us",
    "text-parcel-en-gb",
    "menu-operator-need-en-us",
    "menu-extension-need-en-us-f2",
    "menu-balance-check-en-us-f3",
    "text-parcel-en-gb-x-rp",
    "number-120-en-us-f2",
    "menu-hours-en-us-m3",
    "yesno-no-thanks-en-gb",
)
SEEDS = (0, 1, 2)
DITHER_RMS = 8.0  # about -72 dBFS


@dataclass(frozen=True)
class Mix:
    frames: list[tuple[float, bool, bool]]  # level, voiced, pitched: as the listener sees them
    caller_voiced: list[bool]  # frame by frame, Allison's own voice (heard alone)
    caller_spans: list[tuple[float, float]]  # each file's span in the call


def listen(pcm: np.ndarray) -> list[tuple[float, bool, bool]]:
    """Frame levels and voicing the way the listener gets them: 20 ms at 8 kHz through the
    segmenter (webrtcvad, its floor, its pitch measure)."""
    segmenter = VoiceSegmenter(VadConfig(), RATE)
    pcm = np.concatenate([pcm, np.zeros(-pcm.size % SAMPLES, np.int16)])
    frames = []
    for start in range(0, pcm.size, SAMPLES):
        frame = pcm[start : start + SAMPLES]
        voiced, pitched = segmenter.measure(frame)
        segmenter.advance(voiced, pitched)
        frames.append((frame_db(frame), voiced, pitched))
    return frames


@cache
def clip(name: str) -> tuple[np.ndarray, float]:
    """A fixture and its active speech level."""
    pcm, rate = read_wav(TURNS / f"{name}.wav")
    assert rate == RATE
    level = active_level([level for level, voiced, _ in listen(pcm) if voiced])
    return pcm.astype(np.float64), level


def to_line(signal: np.ndarray) -> np.ndarray:
    pcm = np.clip(np.round(signal), -32768, 32767).astype(np.int16)
    return ulaw_decode(ulaw_encode(pcm))


@cache
def mixed_call(room_under_db: float, seed: int) -> Mix:
    """Allison's turns with the room talking ``room_under_db`` under her (active levels),
    the room's start, order and breaths and the dither drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    spans = []
    at = CALLER_START_S
    for name in CALLER_FILES:
        pcm, _ = clip(name)
        spans.append(
            (round(at / FRAME_S) * FRAME_S, round(at / FRAME_S) * FRAME_S + pcm.size / RATE)
        )
        at += pcm.size / RATE + 2.5
    total = round((at + 1.0) / FRAME_S) * SAMPLES
    caller = np.zeros(total)
    for name, (start, _) in zip(CALLER_FILES, spans, strict=True):
        pcm, _ = clip(name)
        begin = round(start / FRAME_S) * SAMPLES
        caller[begin : begin + pcm.size] += pcm
    caller_db = float(np.mean([clip(name)[1] for name in CALLER_FILES]))
    room = np.zeros(total)
    order = rng.permutation(len(ROOM_FILES))
    at, index = 0.5 + rng.uniform(0.0, 0.5), 0
    while at < total / RATE:
        pcm, level = clip(ROOM_FILES[order[index % len(order)]])
        index += 1
        begin = int(at * RATE)
        piece = pcm[: max(0, min(pcm.size, total - begin))]
        room[begin : begin + piece.size] += piece * 10 ** ((caller_db - room_under_db - level) / 20)
        at += pcm.size / RATE + rng.uniform(0.15, 0.6)
    line = to_line(caller + room + rng.normal(0.0, DITHER_RMS, total))
    return Mix(listen(line), caller_alone(total), spans)


@cache
def caller_alone(samples: int) -> list[bool]:
    """Which frames hold Allison's own voice: her turns heard without the room."""
    caller = np.zeros(samples)
    at = CALLER_START_S
    for name in CALLER_FILES:
        pcm, _ = clip(name)
        begin = round(at / FRAME_S) * SAMPLES
        caller[begin : begin + pcm.size] += pcm
        at += pcm.size / RATE + 2.5
    return [voiced for _, voiced, _ in listen(to_line(caller))]


@dataclass(frozen=True)
class Outcome:
    heard: list[tuple[float, Heard]]
    separating_from: float | None  # the first frame the policy told voices apart


def run_call(mix: Mix) -> Outcome:
    """Feed the policy frame by frame; the turn core takes each of Allison's utterances as
    her turn 0.3 s after it ends."""
    policy = CallerVoice()
    pending = list(mix.caller_spans)
    heard: list[tuple[float, Heard]] = []
    separating_from = None
    for index, (level, voiced, pitched) in enumerate(mix.frames):
        at = round(index * FRAME_S, 6)
        while pending and at >= pending[0][1] + 0.3:
            policy.caller_turn(*pending.pop(0))
        heard.append((at, policy.frame(at, level, voiced, pitched)))
        if separating_from is None and policy.levels.separating:
            separating_from = at
    return Outcome(heard, separating_from)


def kept_for_recogniser(heard: list[tuple[float, Heard]]) -> list[bool]:
    """What the listener would give the recogniser: kept frames, and on a CALLER verdict the
    frames since its ``at`` (a ring of the last lookback_s, like the preroll)."""
    kept = [h.keep for _, h in heard]
    for index, (_, h) in enumerate(heard):
        if h.verdict is not None and h.verdict.whose is Whose.CALLER:
            back = index
            while back > 0 and heard[back - 1][0] >= h.verdict.at - 1e-9:
                back -= 1
                kept[back] = True
    return kept


def check_the_caller_is_heard(mix: Mix, outcome: Outcome) -> None:
    """Every utterance of Allison's is CALLER within 0.2 s of her first word, and the
    recogniser gets at least 97 % of her voiced frames."""
    kept = kept_for_recogniser(outcome.heard)
    for start, end in mix.caller_spans:
        inside = [i for i, (at, _) in enumerate(outcome.heard) if start <= at < end]
        onset = next(outcome.heard[i][0] for i in inside if outcome.heard[i][1].caller)
        assert onset - (start + LEAD_S) <= 0.2, (start, onset)
        voiced = [i for i in inside if mix.caller_voiced[i]]
        share = sum(kept[i] for i in voiced) / len(voiced)
        assert share >= 0.97, (start, share)


def room_only(mix: Mix, at: float) -> bool:
    """Only the room talks here: away from Allison's utterances (and the hangover after)."""
    return not any(start - 0.3 <= at <= end + 0.4 for start, end in mix.caller_spans)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("room_under_db", [16.0, 22.0])
def test_room_talk_under_the_caller_is_background(room_under_db: float, seed: int) -> None:
    mix = mixed_call(room_under_db, seed)
    outcome = run_call(mix)
    # A few seconds of the room talking before Allison speaks: it is background from then on
    # (steadily 12 or more dB under the line's typical level), so a greeting plays on.
    assert outcome.separating_from is not None and outcome.separating_from <= 6.0
    before = [(at, h) for at, h in outcome.heard if 6.0 <= at < CALLER_START_S]
    assert not any(h.caller or h.keep for _, h in before)
    assert all(h.verdict.whose is Whose.BACKGROUND for _, h in before if h.verdict)
    assert sum(voiced for level, voiced, _ in mix.frames[300:350]) > 10  # the room talks
    check_the_caller_is_heard(mix, outcome)
    # Between her turns the room is kept out of her turns (and opens none).
    room = [
        i
        for i, (at, _) in enumerate(outcome.heard)
        if at > CALLER_START_S and room_only(mix, at) and mix.frames[i][1]
    ]
    assert len(room) > 100
    assert sum(outcome.heard[i][1].caller for i in room) <= 0.02 * len(room)


@pytest.mark.parametrize("seed", SEEDS)
def test_room_talk_10_db_under_the_caller_is_never_taken_for_her_silence(seed: int) -> None:
    """At 10 dB the room sits at the separation limit. Before Allison speaks it is only 6 dB
    under the line's level, so it is taken as the caller (today's behaviour); after her turns
    the policy separates on some frames and not others. What must hold: none of her words
    is lost."""
    mix = mixed_call(10.0, seed)
    outcome = run_call(mix)
    before = [h for at, h in outcome.heard if at < CALLER_START_S]
    assert not any(h.verdict and h.verdict.whose is Whose.BACKGROUND for h in before)
    check_the_caller_is_heard(mix, outcome)


@pytest.mark.parametrize("room_under_db", [6.0, 3.0])
def test_a_loud_room_degrades_to_everything_is_the_caller(room_under_db: float) -> None:
    mix = mixed_call(room_under_db, 0)
    outcome = run_call(mix)
    assert outcome.separating_from is None
    for (_, h), (_, voiced, _) in zip(outcome.heard, mix.frames, strict=True):
        assert h.caller == voiced and h.keep
    check_the_caller_is_heard(mix, outcome)
