"""Answering-machine detection on the callee's own audio: person, machine or nobody.

From the answer on, the call feeds each 20 ms frame of the callee's audio with webrtcvad's
verdict on it (``AnsweringMachineDetector.frame``), and may feed what its recogniser heard
(``words``). The detector decides once (``AmdDecision``) from the rules people and machines
differ by:

- a **person** says something short ("Hello?", "Yes?", "Ivan speaking.") and waits for an
  answer: a greeting of at most ``human_max_greeting_s`` then ``human_silence_s`` of silence
  (a longer greeting, up to ``machine_greeting_s``, needs ``long_greeting_silence_s``);
- a **machine** talks on: voice for ``machine_greeting_s`` without a pause long enough to be a
  person waiting, a beep (a near-pure tone of ``beep_min_s`` or more), or a voicemail phrase
  its words contain ("leave a message", "оставьте сообщение");
- **unknown**: no voice for ``silence_unknown_s`` from the answer (or no decision by
  ``max_decision_s``); the script decides what to do.

After a machine verdict, exactly one ``SpeakNow`` says when to start the voicemail message: a
beep has ended, or the greeting has (``greeting_end_silence_s`` of silence without a beep), or
``speak_cap_s`` after the answer at the latest.

Voice is what webrtcvad flags, in runs of at least ``min_voice_s``, from the callee: a run far
quieter than the greeting heard so far is the room behind them (the callee is the loudest
voice on their line, as in call/voices.py) and neither lengthens the greeting nor breaks its
silence. A beep is looked for here (``is_tone``, a numpy FFT of each 40 ms) and never counts
as voice.

Time is the count of frames fed (20 ms each); nothing here reads a clock.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from ..media.levels import check_frame

FRAME_S = 0.02
RATES = (8000, 16000)


@dataclass(frozen=True)
class AmdSettings:
    """The detector's thresholds, in seconds unless named otherwise.

    Where the values come from: the timings of the verdict (``silence_unknown_s``,
    ``human_*``, ``long_greeting_silence_s``, ``machine_greeting_s``, ``max_decision_s``,
    ``greeting_end_silence_s``) from the issue's budget and how people answer a phone, set
    before the bench ran and not moved after. Chosen from what the bench's material showed:
    ``beep_max_drift_hz`` and is_tone's strongest-component rule (Allison's prompts, which
    the set is also built from, hold vowels as pure as a tone for a frame or two),
    ``min_greeting_voice_s`` (webrtcvad's first frames on a hissing line) and the room rules
    ``room_under_db``, ``rise_db``, ``room_judge_s`` (their values are call/voices.py's; they
    were added when the set's people over room babble were taken for machines).
    ``scripts/bench-amd.py`` measures what they give (docs/outbound.md has the numbers).
    """

    # No voice at all this long from the answer: nobody is talking, the verdict is unknown and
    # the script decides (speak first, by default). Asterisk's AMD waits 2.5 s; a person who
    # picks up and says nothing for 3 s is rare, a machine that stays silent that long before
    # its greeting rarer still.
    silence_unknown_s: float = 3.0
    # A run of voiced frames shorter than this is a click, not voice: it neither starts a
    # greeting nor breaks the silence after one (webrtcvad flags single frames of clicks).
    min_voice_s: float = 0.06
    # The callee is the loudest voice on their line (call/voices.py): once a greeting is
    # heard, a run of voice whose loudest frame stays this far under the greeting's level
    # (power mean) is the room talking, not the callee, and breaks no silence. A talker's
    # own words peak at or above their level; 8 dB is call/voices.py's under_caller_db.
    room_under_db: float = 8.0
    # ... and a run whose loudest frame is this far over the greeting's level is the callee
    # speaking up over the room: what was heard before was the room's, and the greeting
    # starts again there. A talker's loud frames are at most 10 dB over their level;
    # call/voices.py's rise_db.
    rise_db: float = 13.0
    # A run is judged the room's only after this much of it stayed quiet: a word often starts
    # softly (call/voices.py's judge_s). Until then it holds off a verdict on the silence.
    room_judge_s: float = 0.2
    # A greeting has at least this much voice in all: the shortest answer ("Yes?", "Hi.") has
    # 0.25 s or more. Less, followed by silence, was a breath, a knock or the line settling
    # (webrtcvad takes the first 80 ms of a hissing line for voice until it adapts), and is
    # forgotten rather than taken for a person.
    min_greeting_voice_s: float = 0.2
    # A person's greeting ("Hello?", "Yes?", "Ivan speaking.") is a word or two: at most this
    # long (voice, with the short gaps between its words, from its first to its last frame).
    human_max_greeting_s: float = 1.2
    # Silence after a short greeting that makes the callee a person. It sets how soon a person
    # hears the robot: the issue wants the robot's first voiced frame within 1 s of the end of
    # the person's "hello", p50 <= 600 ms; on real calls the robot's voice follows this
    # silence by about 60 ms (scripts/bench-dialler.py: 660 ms at 0.6 s). Shorter takes a
    # machine's pause after a short first sentence ("Hi! [0.45 s] You've reached...") for a
    # person waiting: over the bench's seeds 23 and 1-8, 0.4 s found 22-24 of 26 machines,
    # 0.5 s 23-25, 0.6 s 25-26, every person each time. 0.5 s keeps within the budget.
    human_silence_s: float = 0.5
    # Silence after a longer greeting (over human_max_greeting_s) that still makes a person:
    # "Yeah, hello, who is this?". Longer than human_silence_s because a machine's sentence
    # ends with such a pause and goes on; short enough that the person still hears the robot
    # within about a second.
    long_greeting_silence_s: float = 0.7
    # Voice for this long, with no pause long enough to be a person waiting, is a machine's
    # greeting. Longer than any person's greeting (they rarely exceed 2 s), short enough to
    # decide a machine within ~3 s of the answer (a vendor's 7.7 s median was the complaint).
    machine_greeting_s: float = 2.5
    # The latest verdict: undecided by then (voice that began late and keeps stopping), it is
    # unknown. The rules above decide by silence_unknown_s + machine_greeting_s in practice.
    max_decision_s: float = 6.0
    # Beep: a near-pure tone in this band (voicemail beeps are 400-2000 Hz; the telephone
    # band is 300-3400 Hz, and mains hum lies under it).
    beep_low_hz: float = 300.0
    beep_high_hz: float = 3000.0
    # ... where this share of the energy lies around that one frequency (see is_tone). A sine
    # through G.711 has 0.99 or more; a vowel's strongest harmonic can reach it for a frame or
    # two (Allison's clean studio voice does), never for beep_min_s at a steady frequency.
    beep_min_share: float = 0.9
    # ... loud enough to be a tone rather than a hum under the noise: RMS in 16-bit PCM
    # (~-44 dBFS; beeps are played at -20 to -10 dBFS).
    beep_min_rms: float = 200.0
    # ... lasting this long at a steady frequency (voicemail beeps last 0.2-1 s; a vowel's
    # strongest harmonic moves with its pitch and is rarely that pure for that long).
    beep_min_s: float = 0.12
    # ... steady: every tone frame of one beep within this of its first frame's frequency. A
    # generated beep holds its frequency to the 2 Hz the analysis resolves; the strongest
    # harmonic of a sung-out vowel glides with the pitch. (Over all of Allison's 380 prompts
    # through G.711, no 120 ms of speech stays within 5 Hz at a 0.9 share.)
    beep_max_drift_hz: float = 5.0
    # A beep has ended after this long without its tone (one frame of a beep's fade or a
    # G.711 glitch must not split it).
    beep_end_s: float = 0.04
    # After a machine verdict with no beep: this much silence after its last voice is the end
    # of its greeting, the moment to speak the voicemail message. Recorded greetings pause
    # under 1 s between sentences, and a beep usually follows the greeting within 1 s.
    greeting_end_silence_s: float = 1.5
    # Speak the voicemail message at the latest this long after the answer, greeting or not
    # (some greetings never pause, some machines play music).
    speak_cap_s: float = 30.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"AmdSettings.{name} must be a finite number >= 0, got {value}")
        if not 0 < self.beep_low_hz < self.beep_high_hz:
            raise ValueError(
                f"AmdSettings: beep band must be 0 < low < high, got "
                f"{self.beep_low_hz}-{self.beep_high_hz} Hz"
            )
        if not 0 < self.beep_min_share <= 1:
            raise ValueError(
                f"AmdSettings.beep_min_share must be in (0, 1], got {self.beep_min_share}"
            )
        if self.human_max_greeting_s > self.machine_greeting_s:
            raise ValueError(
                "AmdSettings.human_max_greeting_s must not exceed machine_greeting_s, got "
                f"{self.human_max_greeting_s} > {self.machine_greeting_s}"
            )


class Verdict(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AmdDecision:
    """The verdict, when it was reached (seconds from the answer) and why, in plain words."""

    verdict: Verdict
    at_s: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SpeakNow:
    """After a machine verdict: start the voicemail message now (``at_s`` from the answer)."""

    at_s: float
    reason: str


AmdEvent = AmdDecision | SpeakNow

# What voicemail greetings say and people answering do not, normalized (lower case, "ё" as
# "е", no punctuation). Each is (the phrase named in the reason, its pattern).
_VOICEMAIL_PHRASES: tuple[tuple[str, str], ...] = (
    ("leave a message", r"\bleave (a|an|your|me a|us a) (short |brief )?message\b"),
    ("after the tone", r"\b(after|at) the (tone|beep|signal)\b"),
    ("not available", r"\b(not|isn't|is not) available\b|\bunavailable\b"),
    ("voicemail", r"\bvoice ?mail\b"),
    ("the person you are calling", r"\bthe (person|party|subscriber) you (are|re) calling\b"),
    ("can't take your call", r"\b(can't|cannot|can not) (take|answer) (your|the|this) call\b"),
    ("can't come to the phone", r"\b(can't|cannot|can not) come to the phone\b"),
    ("оставьте сообщение", r"\bоставьте (ваше |свое |голосовое )?сообщение\b"),
    ("после сигнала", r"\bпосле (звукового |короткого )?(сигнала|гудка)\b"),
    ("абонент не может ответить", r"\bабонент не может (сейчас )?ответить\b"),
    ("абонент недоступен", r"\bабонент (временно )?недоступен\b"),
    ("автоответчик", r"\bавтоответчик"),
    ("голосовая почта", r"\bголосов\w* почт\w*"),
)
_VOICEMAIL_PATTERNS = tuple((name, re.compile(pattern)) for name, pattern in _VOICEMAIL_PHRASES)
_NOT_WORD = re.compile(r"[^\w']+")


def voicemail_phrase(text: str) -> str | None:
    """The voicemail phrase ``text`` contains ("leave a message", "после сигнала"), or None."""
    normal = _NOT_WORD.sub(" ", text.lower().replace("ё", "е").replace("’", "'")).strip()
    for name, pattern in _VOICEMAIL_PATTERNS:
        if pattern.search(normal):
            return name
    return None


def says_voicemail(text: str) -> bool:
    """Whether ``text`` (a transcript) says what voicemail greetings say."""
    return voicemail_phrase(text) is not None


_DEFAULT = AmdSettings()


def is_tone(pcm: np.ndarray, rate: int, settings: AmdSettings = _DEFAULT) -> float | None:
    """The frequency (Hz) of ``pcm`` when it is a near-pure tone: its strongest component lies
    in the settings' band, it is loud enough, and ``beep_min_share`` of its energy lies within
    the Hann window's main lobe around that frequency (+-2 bins of the block: +-50 Hz over
    40 ms); else None. Any length; two frames (40 ms) tell a tone from a vowel's harmonic
    better than one."""
    if pcm.ndim != 1 or pcm.size < 8:
        raise ValueError(f"expected a 1-D block of at least 8 samples, got shape {pcm.shape}")
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    samples = pcm.astype(np.float64)
    samples -= samples.mean()
    if math.sqrt(float(np.mean(samples * samples))) < settings.beep_min_rms:
        return None
    # Zero-padded to ~2 Hz a bin, so the peak's frequency is read off directly.
    size = max(samples.size, 1 << max(0, (rate // 2 - 1).bit_length()))
    power = np.abs(np.fft.rfft(samples * np.hanning(samples.size), size)) ** 2
    total = float(power.sum())
    if total <= 0:
        return None
    hz_per_bin = rate / size
    # The strongest component of the whole spectrum must be in the band: a vowel whose pitch
    # is under 300 Hz would otherwise show its skirt at the band's edge as a "tone".
    start = max(1, int(20 / hz_per_bin))  # above what the mean's removal leaves
    peak = start + int(np.argmax(power[start:]))
    if not settings.beep_low_hz <= peak * hz_per_bin <= settings.beep_high_hz:
        return None
    # A Hann window spreads a sine over +-2 of the block's own bins (rate / n each).
    lobe = math.ceil(2 * rate / samples.size / hz_per_bin)
    share = float(power[max(0, peak - lobe) : peak + lobe + 1].sum()) / total
    return peak * hz_per_bin if share >= settings.beep_min_share else None


class AnsweringMachineDetector:
    """Feed the callee's audio from the answer on, frame by frame; get the decision once and,
    after a machine verdict, one ``SpeakNow``."""

    def __init__(self, settings: AmdSettings = _DEFAULT, rate: int = 16000) -> None:
        if rate not in RATES:
            raise ValueError(f"AMD needs audio at {' or '.join(map(str, RATES))} Hz, got {rate}")
        self._settings = settings
        self._rate = rate
        self._frame_samples = int(rate * FRAME_S)
        self._frames = 0
        self._previous = np.zeros(self._frame_samples, dtype=np.int16)
        self._decision: AmdDecision | None = None
        self._spoke = False
        # Voice: the current run of voiced frames, and the greeting the counted runs make.
        self._min_voice_frames = max(1, round(settings.min_voice_s / FRAME_S))
        self._judge_frames = max(self._min_voice_frames, round(settings.room_judge_s / FRAME_S))
        self._run_start: int | None = None  # first frame of the current voiced run
        self._run_frames = 0
        self._run_power = 0.0  # the run's frames' mean squares, summed
        self._run_peak = 0.0  # its loudest frame's
        self._run_counted = False  # the run is the callee's voice (part of the greeting)
        self._greeting_start: int | None = None  # first frame of its first counted run
        self._voice_end: int | None = None  # frame count at the end of the last voice
        self._longest_gap = 0  # frames, inside the greeting so far
        self._greeting_voice = 0  # voiced frames in the greeting so far
        self._greeting_power = 0.0  # their mean squares, summed (its level: the power mean)
        # Beep: the current run of tone frames at one frequency.
        self._tone_hz: float | None = None
        self._tone_start = 0
        self._tone_frames = 0
        self._tone_missing = 0
        self._first_beep: tuple[float, float] | None = None  # (Hz, start s) of the first beep
        self._beep_end: tuple[float, int] | None = None  # (Hz, end frame) of the last beep

    @property
    def frame_samples(self) -> int:
        return self._frame_samples

    @property
    def now_s(self) -> float:
        """Seconds of audio fed since the answer."""
        return self._seconds(self._frames)

    @property
    def decision(self) -> AmdDecision | None:
        return self._decision

    @property
    def finished(self) -> bool:
        """Nothing more will come: decided, and after a machine verdict, told when to speak."""
        if self._decision is None:
            return False
        return self._decision.verdict is not Verdict.MACHINE or self._spoke

    def frame(self, pcm: np.ndarray, voiced: bool) -> list[AmdEvent]:
        """The next 20 ms of the callee's audio (int16 mono at the detector's rate) and whether
        webrtcvad found voice in it."""
        check_frame(pcm, self._frame_samples, round(FRAME_S * 1000), self._rate)
        self._frames += 1
        if self.finished:
            return []
        window = np.concatenate([self._previous, pcm])
        self._previous = pcm
        tone = is_tone(window, self._rate, self._settings)
        self._follow_tone(tone)
        # A beep is no voice: it must neither lengthen a greeting nor break the silence after
        # one. (Only a beep: a single frame of a clean vowel can look like a tone.)
        power = float(np.mean(np.square(pcm, dtype=np.float64)))
        self._follow_voice(voiced and not self._in_beep(), power)
        if self._decision is None:
            return self._decide()
        return self._speak_when_greeting_ends()

    def words(self, text: str, at_s: float) -> list[AmdEvent]:
        """What the recogniser heard the callee say, ``at_s`` seconds after the answer. A
        voicemail phrase before any decision makes the callee a machine."""
        if not math.isfinite(at_s) or at_s < 0:
            raise ValueError(f"at_s must be a finite number of seconds >= 0, got {at_s}")
        if self._decision is not None:
            return []
        phrase = voicemail_phrase(text)
        if phrase is None:
            return []
        if self._voice_end is None:
            # Words heard are voice that was there (a call that fed its frames elsewhere
            # until now): the silence before the message counts from here.
            self._voice_end = self._frames
        return self._decide_as(Verdict.MACHINE, f'voicemail phrase "{phrase}"', at_s)

    # Voice and greeting.

    def _follow_voice(self, voiced: bool, power: float) -> None:
        if not voiced:
            self._run_start = None
            self._run_frames = 0
            self._run_power = self._run_peak = 0.0
            self._run_counted = False
            return
        if self._run_start is None:
            self._run_start = self._frames - 1
        self._run_frames += 1
        self._run_power += power
        self._run_peak = max(self._run_peak, power)
        if self._run_counted:
            self._greeting_voice += 1
            self._greeting_power += power
            self._voice_end = self._frames
            return
        if self._run_frames < self._min_voice_frames:
            return
        if self._greeting_start is not None and self._greeting_voice:
            active = self._greeting_power / self._greeting_voice
            if self._run_peak < active * 10 ** (-self._settings.room_under_db / 10):
                return  # the room's voice, not the callee's (unless it grows louder)
            if self._run_peak > active * 10 ** (self._settings.rise_db / 10):
                self._forget_greeting()  # the callee rose out of the room: that was the room
        if self._greeting_start is None:
            self._greeting_start = self._run_start
        elif self._voice_end is not None:
            self._longest_gap = max(self._longest_gap, self._run_start - self._voice_end)
        self._run_counted = True
        self._greeting_voice += self._run_frames
        self._greeting_power += self._run_power
        self._voice_end = self._frames

    def _voice_pending(self) -> bool:
        """Voice under way that counts, or too short yet to tell."""
        if self._run_start is None:
            return False
        return self._run_counted or self._run_frames < self._judge_frames

    def _decide(self) -> list[AmdEvent]:
        settings = self._settings
        if self._first_beep is not None:
            hz, start = self._first_beep
            return self._decide_as(Verdict.MACHINE, f"beep at {hz:.0f} Hz at {start:.2f} s")
        if self._greeting_start is None or self._voice_end is None:
            # Voice that is just starting is not "no voice": let it become a greeting.
            if self.now_s >= settings.silence_unknown_s - 1e-9 and not self._voice_pending():
                return self._decide_as(Verdict.UNKNOWN, f"no voice for {self.now_s:.1f} s")
            return []
        greeting = self._seconds(self._voice_end - self._greeting_start)
        silence = self._seconds(self._frames - self._voice_end)
        short = greeting <= settings.human_max_greeting_s + 1e-9
        wait = settings.human_silence_s if short else settings.long_greeting_silence_s
        # Voice that has just come back (too short yet to count) may be the greeting going on:
        # the silence is over only once it turns out to be a click.
        resuming = self._voice_pending()
        if silence >= wait - 1e-9 and not resuming:
            if self._seconds(self._greeting_voice) < settings.min_greeting_voice_s - 1e-9:
                self._forget_greeting()
                return self._decide()
            return self._decide_as(
                Verdict.HUMAN, f"greeting {greeting:.2f} s then {silence:.2f} s of silence"
            )
        if greeting >= settings.machine_greeting_s - 1e-9:
            reason = f"voice for {greeting:.2f} s without a pause"
            if self._longest_gap:
                reason += f" (gaps up to {self._seconds(self._longest_gap):.2f} s)"
            return self._decide_as(Verdict.MACHINE, reason)
        if self.now_s >= settings.max_decision_s - 1e-9:
            return self._decide_as(
                Verdict.UNKNOWN, f"no decision within {settings.max_decision_s:.1f} s"
            )
        return []

    def _forget_greeting(self) -> None:
        self._greeting_start = None
        self._voice_end = None
        self._longest_gap = 0
        self._greeting_voice = 0
        self._greeting_power = 0.0

    def _decide_as(
        self, verdict: Verdict, reason: str, at_s: float | None = None
    ) -> list[AmdEvent]:
        self._decision = AmdDecision(verdict, self.now_s if at_s is None else at_s, (reason,))
        events: list[AmdEvent] = [self._decision]
        if verdict is Verdict.MACHINE and self._frames:
            events += self._speak_when_greeting_ends()
        return events

    def _speak_when_greeting_ends(self) -> list[AmdEvent]:
        settings = self._settings
        if self._spoke:
            return []
        if self.now_s >= settings.speak_cap_s - 1e-9:
            return self._speak(f"{settings.speak_cap_s:.0f} s after the answer")
        if self._tone_hz is not None or self._voice_pending():
            return []  # a beep or a word under way: wait for its end
        if self._beep_end is not None:
            hz, end = self._beep_end
            return self._speak(f"beep at {hz:.0f} Hz ended at {self._seconds(end):.2f} s")
        last_sound = self._voice_end
        if last_sound is None:
            return []
        silence = self._seconds(self._frames - last_sound)
        if silence >= settings.greeting_end_silence_s - 1e-9:
            ended = self._seconds(last_sound)
            return self._speak(f"greeting ended at {ended:.2f} s, no beep within {silence:.1f} s")
        return []

    def _speak(self, reason: str) -> list[AmdEvent]:
        self._spoke = True
        return [SpeakNow(self.now_s, reason)]

    # Beep.

    def _follow_tone(self, hz: float | None) -> None:
        settings = self._settings
        if self._tone_hz is not None:
            steady = hz is not None and abs(hz - self._tone_hz) <= settings.beep_max_drift_hz
            if steady:
                self._tone_frames += 1
                self._tone_missing = 0
            elif hz is not None:
                self._end_tone()  # another frequency: a two-tone beep goes on
            else:
                self._tone_missing += 1
                if self._seconds(self._tone_missing) >= settings.beep_end_s - 1e-9:
                    self._end_tone()
        if hz is not None and self._tone_hz is None:
            self._tone_hz, self._tone_start, self._tone_frames = hz, self._frames - 1, 1
            self._tone_missing = 0
        if (
            self._tone_hz is not None
            and self._first_beep is None
            and self._seconds(self._tone_frames) >= settings.beep_min_s - 1e-9
        ):
            self._first_beep = (self._tone_hz, self._seconds(self._tone_start))

    def _in_beep(self) -> bool:
        long_enough = self._seconds(self._tone_frames) >= self._settings.beep_min_s - 1e-9
        return self._tone_hz is not None and long_enough

    def _end_tone(self) -> None:
        if self._tone_hz is None:
            return
        end = self._tone_start + self._tone_frames
        long_enough = self._seconds(self._tone_frames) >= self._settings.beep_min_s - 1e-9
        # A short tone right after a beep is the beep's second note.
        follows_beep = self._beep_end is not None and self._tone_start - self._beep_end[1] <= 1
        if long_enough or follows_beep:
            self._beep_end = (self._tone_hz, end)
        self._tone_hz = None
        self._tone_frames = 0
        self._tone_missing = 0

    def _seconds(self, frames: int) -> float:
        return round(frames * FRAME_S, 6)
