#!/usr/bin/env python3
"""Answering-machine detection on a labelled set of answers: accuracy and decision times.

The set is built in memory on every run, the same each time (seeded), from Allison Smith's
prompts (Debian's asterisk-core-sounds-en-wav, /usr/share/asterisk/sounds/en_US_f_Allison)
and espeak-ng voices; nothing is downloaded:

  people     "Hello?", "Yes?", "Ivan speaking.", "Hello, this is Maria.", "Yeah, hello, who
             is this?", "Алло?", Allison's "hello" and "hello world"..., said 0.3-1.2 s after
             the answer, then the silence of someone waiting for an answer (and, for some, a
             second "hello?"); clean, over room babble (other recordings, 16 dB under the
             voice) or over line noise
  machines   greetings of 3-20 s: Asterisk's own voicemail greeting (Allison's prompts joined
             as app_voicemail plays them, with their own padding) and espeak-ng greetings,
             with or without a beep (1000, 425, 850, 1400 Hz or Allison's beep, 0.3-1 s),
             then the silence of a recording
  silence    line noise only (hiss, hum, clicks, digital silence)

Each answer goes through G.711 u-law (what the bot receives), webrtcvad runs on it at 8 kHz as
the call runs it (voicebot.speech.vad with the default [vad] config), and the detector gets
16 kHz frames (the call's internal rate; --rate 8000 for 8 kHz) with that voice flag.

    .venv/bin/python scripts/bench-amd.py
    .venv/bin/python scripts/bench-amd.py --seed 7 --rate 8000 -v

Timings are printed, never asserted; the exit status is 0 unless the set cannot be built.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shlex
import sys
import wave
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicebot.call.amd import (
    AmdDecision,
    AmdSettings,
    AnsweringMachineDetector,
    SpeakNow,
    Verdict,
)
from voicebot.call.answering import LATE_MACHINE_S, late_machine
from voicebot.capture.wav import read_wav
from voicebot.config import VadConfig, load_config
from voicebot.errors import MediaError
from voicebot.media.codecs import resample
from voicebot.media.g711 import ulaw_decode, ulaw_encode
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.speech.vad import VoiceSegmenter
from voicebot.tools.sounds import allison_prompt, espeak_wav

LINE_RATE = 8000
FRAME_S = 0.02
# People speak on the phone at about -22 dBFS (ITU-T's -19 dBm0 active speech level); each
# answer is put somewhere from 6 dB under to 4 dB over it.
SPEECH_DBFS = -22.0
BABBLE_UNDER_DB = 16.0
# The line noise under every answer, and under the noisy ones.
QUIET_LINE_DBFS = -65.0
NOISY_LINE_DBFS = -45.0
# Recordings the babble of a room is made of (not used as anyone's greeting).
BABBLE_PROMPTS = ("demo-congrats", "vm-msginstruct", "tt-weasels", "demo-instruct", "vm-review")


@dataclass
class Answer:
    """One answer and what it is: the audio from the answer on, at 8 kHz, and its truth."""

    name: str
    expected: Verdict
    pcm: np.ndarray
    # Person: the end of their greeting; machine: the end of its last word (seconds).
    greeting_end_s: float | None = None
    beep_end_s: float | None = None
    conditions: str = "clean"


@dataclass
class Outcome:
    answer: Answer
    decision: AmdDecision | None
    speak: SpeakNow | None


# Sources.


def to_line_rate(pcm: np.ndarray, rate: int) -> np.ndarray:
    if rate == LINE_RATE:
        return pcm.astype(np.float64)
    return soxr.resample(pcm.astype(np.float64), rate, LINE_RATE)


def allison(name: str) -> np.ndarray:
    pcm, rate = read_wav(allison_prompt(name))
    return to_line_rate(pcm, rate)


def espeak(text: str, voice: str, speed: int) -> np.ndarray:
    with wave.open(io.BytesIO(espeak_wav(text, voice, speed)), "rb") as source:
        rate = source.getframerate()
        raw = source.readframes(source.getnframes())
    return to_line_rate(np.frombuffer(raw, dtype="<i2"), rate)


def speech_bounds(pcm: np.ndarray) -> tuple[int, int]:
    """First and last sample of the speech: 10 ms blocks within 35 dB of the loudest one."""
    block = LINE_RATE // 100
    count = len(pcm) // block
    rms = np.sqrt(np.mean(pcm[: count * block].reshape(count, block) ** 2, axis=1))
    loud = np.nonzero(rms >= rms.max() * 10 ** (-35 / 20))[0]
    return int(loud[0]) * block, int(loud[-1] + 1) * block


def trimmed(pcm: np.ndarray) -> np.ndarray:
    start, end = speech_bounds(pcm)
    return pcm[start:end]


def active_rms(pcm: np.ndarray) -> float:
    """RMS of the louder half of 20 ms frames: the level of the speech, not its pauses."""
    block = int(LINE_RATE * FRAME_S)
    count = len(pcm) // block
    power = np.mean(pcm[: count * block].reshape(count, block) ** 2, axis=1)
    loud = power[power >= np.median(power)]
    return float(np.sqrt(np.mean(loud)))


def at_level(pcm: np.ndarray, dbfs: float) -> np.ndarray:
    return pcm * (32768 * 10 ** (dbfs / 20) / max(active_rms(pcm), 1e-9))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * LINE_RATE))


def sine(hz: float, seconds: float, dbfs: float = -14.0) -> np.ndarray:
    t = np.arange(round(seconds * LINE_RATE)) / LINE_RATE
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)  # 5 ms ramps, as beeps have
    return 32768 * 10 ** (dbfs / 20) * np.sqrt(2) * np.sin(2 * np.pi * hz * t) * ramp


def line_noise(
    samples: int, dbfs: float, rng: np.random.Generator, hum: bool = False
) -> np.ndarray:
    """Hiss (white noise band-limited by the phone line) at ``dbfs``, with 50 Hz hum if asked."""
    noise = soxr.resample(rng.normal(0, 1, samples * 2), LINE_RATE * 2, LINE_RATE)[:samples]
    noise *= 32768 * 10 ** (dbfs / 20) / max(float(np.std(noise)), 1e-9)
    if hum:
        t = np.arange(samples) / LINE_RATE
        noise += 32768 * 10 ** ((dbfs + 6) / 20) * np.sin(2 * np.pi * 50 * t)
    return noise


def babble(samples: int, level_rms: float, rng: np.random.Generator) -> np.ndarray:
    """A room of voices: Allison's long prompts, looped from random places, summed."""
    mix = np.zeros(samples)
    for name in BABBLE_PROMPTS:
        voice = trimmed(allison(name))
        voice = np.tile(voice, samples // len(voice) + 2)
        start = int(rng.integers(0, len(voice) - samples))
        mix += voice[start : start + samples] * rng.uniform(0.5, 1.0)
    return mix * (level_rms / max(active_rms(mix), 1e-9))


# The set.


@dataclass(frozen=True)
class Spoken:
    """A text said by espeak-ng, or one of Allison's prompts (cut to ``cut_s`` if given)."""

    text: str
    voice: str = ""  # espeak-ng voice; empty: ``text`` names Allison's prompts, joined by " "
    speed: int = 160
    cut_s: float | None = None

    def audio(self) -> np.ndarray:
        if not self.text:
            return np.zeros(0)
        if self.voice:
            return trimmed(espeak(self.text, self.voice, self.speed))
        # Joined as app_voicemail plays them: each file with its own leading and trailing
        # silence, trimmed only at the two ends.
        pcm = trimmed(np.concatenate([allison(name) for name in self.text.split()]))
        if self.cut_s is not None:
            pcm = trimmed(pcm[: round(self.cut_s * LINE_RATE)])
        return pcm

    def label(self) -> str:
        if self.voice:
            return f"espeak {self.voice} {self.speed}: {self.text!r}"
        return self.text or "no greeting"


PEOPLE = (
    Spoken("Hello?", "en-us", 160),
    Spoken("Hello?", "en-gb+f3", 140),
    Spoken("Yes?", "en-us+m3", 170),
    Spoken("Yes?", "en-gb", 150),
    Spoken("Ivan speaking.", "en-gb-scotland", 160),
    Spoken("Ivan speaking.", "en-us+f2", 180),
    Spoken("Hello, this is Maria.", "en-us+f3", 160),
    Spoken("Hello, this is Maria.", "en-gb", 140),
    Spoken("Yeah, hello, who is this?", "en-us", 170),
    Spoken("Yeah, hello, who is this?", "en-gb+f4", 150),
    Spoken("Hi.", "en-us+m4", 160),
    Spoken("Speaking.", "en-gb", 170),
    Spoken("Алло?", "ru", 150),
    Spoken("Да, слушаю.", "ru", 160),
    Spoken("hello"),
    Spoken("hello-world", cut_s=0.62),  # her "hello" of "hello world"
    Spoken("hello-world"),
    Spoken("im-sorry"),  # "I'm sorry?"
    Spoken("vm-no"),  # "No."
    Spoken("one-moment-please"),
)
MACHINES = (
    # Asterisk's own voicemail greetings, as app_voicemail plays them.
    Spoken("vm-theperson digits/2 digits/0 digits/4 vm-isunavail vm-intro"),
    Spoken("vm-theperson digits/3 digits/1 vm-isonphone vm-intro"),
    Spoken("vm-nobodyavail vm-intro"),
    Spoken("vm-nobodyavail please-try-call-later"),
    Spoken("number-not-answering please-try-call-later"),
    Spoken("vm-intro"),
    Spoken(
        "Hi, you've reached Anna. I can't take your call right now. "
        "Please leave a message after the tone.",
        "en-us+f3",
        150,
    ),
    Spoken(
        "Hello, this is Maria. I'm not available at the moment, leave your name and number "
        "and I'll call you back.",
        "en-gb+f2",
        165,
    ),
    Spoken("You have reached the voicemail of Ivan Petrov. Please leave a message.", "en-gb", 170),
    Spoken(
        "The person you are calling is not available. Please leave a message after the tone. "
        "When you have finished recording, you may hang up.",
        "en-us",
        160,
    ),
    Spoken(
        "Thanks for calling Acme Dental. Our office is closed. Our hours are Monday to Friday, "
        "nine to five. Please leave a message with your name, your number and the reason for "
        "your call, and we will call you back as soon as we can. Thank you.",
        "en-us+m3",
        150,
    ),
    Spoken("Hey, it's Tom, sorry I missed you. Leave a message.", "en-us+m2", 175),
    Spoken(
        "Hi! You've reached the Smiths. We can't come to the phone right now, "
        "but leave us a message and we'll get back to you.",
        "en-gb-scotland",
        160,
    ),
    Spoken(
        "Здравствуйте. Абонент не может ответить на ваш звонок. Оставьте сообщение после сигнала.",
        "ru",
        160,
    ),
    Spoken("Вы позвонили Анне. Оставьте, пожалуйста, сообщение.", "ru", 170),
)
BEEPS: tuple[tuple[str, float, float], ...] = (  # (name, Hz, seconds); Hz 0: Allison's beep
    ("1000 Hz", 1000.0, 0.5),
    ("425 Hz", 425.0, 0.8),
    ("850 Hz", 850.0, 0.3),
    ("1400 Hz", 1400.0, 1.0),
    ("Allison's beep", 0.0, 0.0),
)


def build_set(rng: np.random.Generator) -> list[Answer]:
    answers: list[Answer] = []
    for index, spoken in enumerate(PEOPLE):
        # Every person once clean; every other one again over babble, every third over hiss.
        conditions = ["clean"] + (["babble"] if index % 2 == 0 else [])
        conditions += ["line noise"] if index % 3 == 1 else []
        for condition in conditions:
            answers.append(person(spoken, condition, rng))
    for index, spoken in enumerate(MACHINES):
        answers.append(machine(spoken, BEEPS[index % len(BEEPS)], index % 4 == 1, rng))
        if index % 3 != 2:
            # Again without a beep; espeak's greetings said slower (longer pauses between
            # sentences), as another person would record them.
            slower = replace(spoken, speed=spoken.speed - 25) if spoken.voice else spoken
            answers.append(machine(slower, None, False, rng))
    answers.append(machine(Spoken(""), BEEPS[0], False, rng))  # a beep and nothing else
    for name, dbfs, hum, clicks in (
        ("digital silence", None, False, False),
        ("quiet line", QUIET_LINE_DBFS, False, False),
        ("hiss", NOISY_LINE_DBFS, False, False),
        ("loud hiss", -35.0, False, False),
        ("hum", -55.0, True, False),
        ("clicks on a quiet line", -60.0, False, True),
    ):
        samples = round(6.0 * LINE_RATE)
        pcm = np.zeros(samples) if dbfs is None else line_noise(samples, dbfs, rng, hum)
        if clicks:
            for at in rng.uniform(0.2, 5.5, 6):
                start = round(at * LINE_RATE)
                pcm[start : start + 40] += rng.normal(0, 6000, 40)
        answers.append(Answer(f"silence: {name}", Verdict.UNKNOWN, pcm, conditions=name))
    return answers


def person(spoken: Spoken, condition: str, rng: np.random.Generator) -> Answer:
    voice = at_level(spoken.audio(), SPEECH_DBFS + rng.uniform(-6, 4))
    lead = rng.uniform(0.3, 1.2)
    # Waiting for the robot; some say "hello?" again after 2-3 s of silence, as people do.
    wait = rng.uniform(2.0, 3.0)
    parts = [silence(lead), voice, silence(wait)]
    if rng.random() < 0.3:
        parts += [voice, silence(2.0)]
    pcm = np.concatenate(parts)
    if condition == "babble":
        pcm += babble(len(pcm), active_rms(voice) * 10 ** (-BABBLE_UNDER_DB / 20), rng)
    noise_db = NOISY_LINE_DBFS if condition == "line noise" else QUIET_LINE_DBFS
    pcm += line_noise(len(pcm), noise_db, rng)
    end = lead + len(voice) / LINE_RATE
    return Answer(f"person: {spoken.label()}", Verdict.HUMAN, pcm, end, None, condition)


def machine(
    spoken: Spoken, beep: tuple[str, float, float] | None, noisy: bool, rng: np.random.Generator
) -> Answer:
    voice = spoken.audio()
    voice = at_level(voice, SPEECH_DBFS + rng.uniform(-4, 4)) if len(voice) else voice
    lead = rng.uniform(0.2, 0.8)
    parts = [silence(lead), voice]
    end = lead + len(voice) / LINE_RATE
    beep_end = None
    label = f"machine: {spoken.label()}"
    if beep is not None:
        name, hz, seconds = beep
        gap = rng.uniform(0.2, 0.8)
        tone = trimmed(allison("beep")) if hz == 0 else sine(hz, seconds)
        parts += [silence(gap), tone]
        beep_end = end + gap + len(tone) / LINE_RATE
        label += f" + beep ({name})"
    parts.append(silence(8.0))  # the recording: the robot should have spoken by now
    pcm = np.concatenate(parts)
    pcm += line_noise(len(pcm), NOISY_LINE_DBFS if noisy else QUIET_LINE_DBFS, rng)
    condition = "line noise" if noisy else "clean"
    return Answer(label, Verdict.MACHINE, pcm, end, beep_end, condition)


# Running the detector.


def run(answer: Answer, settings: AmdSettings, rate: int) -> Outcome:
    line = ulaw_decode(ulaw_encode(np.clip(np.round(answer.pcm), -32768, 32767).astype(np.int16)))
    segmenter = VoiceSegmenter(VadConfig(), LINE_RATE)
    line_frame = segmenter.frame_samples
    count = len(line) // line_frame
    if rate == LINE_RATE:
        heard = line
    else:
        heard = np.clip(soxr.resample(line.astype(np.float64), LINE_RATE, rate), -32768, 32767)
        heard = np.round(heard).astype(np.int16)
    detector = AnsweringMachineDetector(settings, rate)
    size = detector.frame_samples
    decision: AmdDecision | None = None
    speak: SpeakNow | None = None
    for index in range(count):
        voiced, _ = segmenter.measure(line[index * line_frame : (index + 1) * line_frame])
        frame = heard[index * size : (index + 1) * size]
        if len(frame) < size:
            break
        for event in detector.frame(frame, voiced):
            if isinstance(event, AmdDecision):
                decision = event
            else:
                speak = event
        if detector.finished:
            break
    return Outcome(answer, decision, speak)


async def corrected_by_words(outcomes: list[Outcome]) -> list[tuple[Verdict | None, str]]:
    """The verdict each answer ends with once the call hears its first words: what follows a
    person's (or no) verdict, up to LATE_MACHINE_S, through whisper (the English model a call
    uses), corrected to a machine on a voicemail phrase as call/answering.py does."""
    engine = WhisperEngine(load_config(None).asr)
    await engine.load()
    final: list[tuple[Verdict | None, str]] = []
    try:
        for outcome in outcomes:
            decision = outcome.decision
            if decision is None or decision.verdict is Verdict.MACHINE:
                final.append((decision.verdict if decision else None, ""))
                continue
            begin = round(decision.at_s * LINE_RATE)
            after = outcome.answer.pcm[begin : begin + round(LATE_MACHINE_S * LINE_RATE)]
            pcm = np.clip(np.round(after), -32768, 32767).astype(np.int16)
            text = (await engine.transcribe(resample(pcm, LINE_RATE, 16000))).text
            corrected = late_machine(decision, text, decision.at_s + 1.0)
            final.append((corrected.verdict if corrected else decision.verdict, text))
    finally:
        await engine.close()
    return final


def report_words(outcomes: list[Outcome], final: list[tuple[Verdict | None, str]]) -> None:
    print("\nwith the first words (whisper tiny.en, as a call corrects a verdict):")
    pairs = list(zip(outcomes, final, strict=True))
    for truth, label in ((Verdict.HUMAN, "people"), (Verdict.MACHINE, "machines")):
        group = [v for o, (v, _) in pairs if o.answer.expected is truth]
        right = sum(v is truth for v in group)
        print(f"  {label} as {truth}: {right}/{len(group)} = {100 * right / len(group):.1f} %")
    for outcome, (final_verdict, text) in pairs:
        expected = outcome.answer.expected
        if final_verdict is not expected and expected is not Verdict.UNKNOWN:
            print(f"  still wrong: {outcome.answer.name} -> {final_verdict} (heard {text!r})")


def percentiles(values: list[float]) -> str:
    if not values:
        return "n=0"
    array = np.asarray(values) * 1000
    return (
        f"n={len(values)} p50 {np.median(array):.0f} ms, p95 {np.percentile(array, 95):.0f} ms, "
        f"min {array.min():.0f}, max {array.max():.0f}"
    )


def report(outcomes: list[Outcome], verbose: bool) -> None:
    print(f"\n{len(outcomes)} answers")
    for verdict, label, goal in (
        (Verdict.HUMAN, "people recognised as people", "goal >= 97 %"),
        (Verdict.MACHINE, "machines recognised as machines", "goal >= 90 %"),
        (Verdict.UNKNOWN, "silence recognised as unknown", ""),
    ):
        group = [o for o in outcomes if o.answer.expected is verdict]
        right = [o for o in group if o.decision is not None and o.decision.verdict is verdict]
        share = 100 * len(right) / max(len(group), 1)
        print(f"  {label}: {len(right)}/{len(group)} = {share:.1f} % {goal}".rstrip())
    wrong = [o for o in outcomes if o.decision is None or o.decision.verdict != o.answer.expected]
    print("\nconfusions:" if wrong else "\nconfusions: none")
    for outcome in wrong:
        got = outcome.decision
        said = f"{got.verdict} at {got.at_s:.2f} s: {'; '.join(got.reasons)}" if got else "none"
        print(f"  {outcome.answer.name} [{outcome.answer.conditions}] -> {said}")
    if verbose:
        print("\nevery answer:")
        for outcome in outcomes:
            got = outcome.decision
            said = f"{got.verdict} at {got.at_s:.2f} s ({'; '.join(got.reasons)})" if got else "-"
            speak = outcome.speak
            spoke = f"; speak at {speak.at_s:.2f} s ({speak.reason})" if speak else ""
            print(f"  {outcome.answer.name} [{outcome.answer.conditions}]: {said}{spoke}")

    people = [
        o
        for o in outcomes
        if o.answer.expected is Verdict.HUMAN and o.decision and o.decision.verdict is Verdict.HUMAN
    ]
    lags = [o.decision.at_s - (o.answer.greeting_end_s or 0) for o in people if o.decision]
    print(
        "\npeople: verdict after the end of their greeting (the robot's first voiced frame "
        "follows once its greeting starts playing):"
    )
    print(f"  {percentiles(lags)}")
    by_condition: dict[str, list[float]] = {}
    for outcome, lag in zip(people, lags, strict=True):
        by_condition.setdefault(outcome.answer.conditions, []).append(lag)
    for condition, values in sorted(by_condition.items()):
        print(f"    {condition}: {percentiles(values)}")
    machines = [
        o
        for o in outcomes
        if o.answer.expected is Verdict.MACHINE
        and o.decision
        and o.decision.verdict is Verdict.MACHINE
    ]
    print("\nmachines: verdict time from the answer:")
    print(f"  {percentiles([o.decision.at_s for o in machines if o.decision])}")
    after_beep = [o for o in machines if o.answer.beep_end_s is not None and o.speak]
    no_beep = [o for o in machines if o.answer.beep_end_s is None and o.speak]
    after_beep_s = [o.speak.at_s - (o.answer.beep_end_s or 0) for o in after_beep if o.speak]
    after_end_s = [o.speak.at_s - (o.answer.greeting_end_s or 0) for o in no_beep if o.speak]
    print("speak-now after the beep's end (negative: before it ended, the message is cut):")
    print(f"  {percentiles(after_beep_s)}")
    print("speak-now after the end of a greeting without a beep:")
    print(f"  {percentiles(after_end_s)}")
    for outcome in after_beep:
        if outcome.speak and outcome.speak.at_s < (outcome.answer.beep_end_s or 0):
            print(f"  spoke before the beep ended: {outcome.answer.name}: {outcome.speak.reason}")


def parse_setting(item: str) -> tuple[str, float]:
    name, equals, value = item.partition("=")
    if not equals or name not in AmdSettings.__dataclass_fields__:
        raise ValueError(f"--set {item!r}: expected NAME=VALUE with NAME one of AmdSettings")
    try:
        return name, float(value)
    except ValueError:
        raise ValueError(f"--set {item!r}: {value!r} is not a number") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=23, help="the set's random choices")
    parser.add_argument("--rate", type=int, default=16000, choices=(8000, 16000))
    parser.add_argument("-v", "--verbose", action="store_true", help="print every answer")
    parser.add_argument(
        "--words", action="store_true",
        help="also correct verdicts by the first words heard (whisper; about a minute)",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="change one of AmdSettings (e.g. --set human_silence_s=0.45); repeatable",
    )  # fmt: skip
    args = parser.parse_args()
    try:
        settings = replace(AmdSettings(), **dict(parse_setting(item) for item in args.set))
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    print("command: " + shlex.join([".venv/bin/python", *sys.argv]))
    print(f"detector rate {args.rate} Hz; webrtcvad at {LINE_RATE} Hz with {VadConfig()}")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in asdict(settings).items()))
    rng = np.random.default_rng(args.seed)
    try:
        answers = build_set(rng)
    except (MediaError, OSError, ValueError) as exc:
        print(f"bench-amd: cannot build the set: {exc}", file=sys.stderr)
        return 1
    counts = {v: sum(a.expected is v for a in answers) for v in Verdict}
    print("set: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + f" (seed {args.seed})")
    outcomes = [run(answer, settings, args.rate) for answer in answers]
    report(outcomes, args.verbose)
    if args.words:
        report_words(outcomes, asyncio.run(corrected_by_words(outcomes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
