#!/usr/bin/env python3
"""Regenerate the labelled caller-turn set in tests/fixtures/turns/ (8 kHz mono 16-bit WAV).

.venv/bin/python scripts/make-turn-set.py [--check]

The endpointing benchmark plays these to the bot on real calls and measures voice-to-voice
latency (the caller's last voiced frame -> the bot's first voiced frame) and false cut-offs
(the bot answering inside a mid-turn pause), and plays the noise bursts and barge-in speech
over a prompt. Each file is built from trimmed clips with exact digital silence between
them, so ``labels.json`` can say from the construction where the speech starts, where the
caller's voice really ends and where the mid-turn pauses are.

Speech is Allison Smith's Asterisk prompts (Debian asterisk-core-sounds-en-wav, real human
speech, CC BY-SA 3.0) where she has the words, else espeak-ng (``-s 140``, 22.05 kHz resampled
to 8 kHz with soxr) in the voices whisper tiny.en hears correctly (checked by the slow test in
tests/unit/test_turn_set.py). Noise bursts are synthesized from a numpy RNG with a fixed seed.

How a file is made: every clip is scaled by the turn's gain (peak of the whole turn -> -3 dBFS),
then trimmed to its 10 ms frames whose RMS exceeds SPEECH_RMS (about -44 dBFS) at that level,
with a 3 ms fade where a cut goes through sound; the clips are joined with zeros (JOIN_S inside
a phrase, the listed pauses between phrases) and MARGIN_S of zeros goes before and after. All
clip edges fall on the 10 ms frame grid. The list below is the single source of truth:
labels.json and README.md are written from it. ``--check`` only reports what differs from what
this script would write (exit 1 if anything does), without writing.

The paused answers (groups ``menu-carrier``, ``digits-carrier``) are a carrier phrase, a pause
of 0.3-1.0 s, then the answer. The background turns (``background-10db`` ...) are menu
answers with another speaker's talk under them, from before the caller speaks to after, at
10, 16 or 22 dB under the caller's level (``with_talk``); their labels say where each plays.
How a turn is played several times, inaudibly differently, is ``voicebot/tools/takes.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import wave
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import soxr

from voicebot.capture.wav import wav_bytes

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voicebot.tools.sounds import ALLISON_DIR, ALLISON_PACKAGE, espeak_wav  # noqa: E402

OUT_DIR = REPO / "tests" / "fixtures" / "turns"
RATE = 8000
FRAME = RATE // 100  # 10 ms
MARGIN_S = 0.1  # zeros before the first and after the last voiced frame
JOIN_S = 0.05  # zeros between the words of one fluent phrase joined from clips
DIGIT_GAP_S = 0.25  # a caller reading out digits fluently
SPEECH_RMS = 200.0  # about -44 dBFS: a frame above this (at the file's level) is voiced
PEAK = 0.7 * 32767  # -3 dBFS
FADE_S = 0.003
ESPEAK_SPEED = 140
SEED = 20240611
# A gap between clips counts as a mid-turn pause (listed in pauses_s) from this long.
MIN_PAUSE_S = 0.2

DIGIT_WORDS = "zero one two three four five six seven eight nine".split()

# ---- the set -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """One source recording: Allison's ``allison`` (relative to ALLISON_DIR; only its
    ``span_s`` seconds when given) or espeak-ng saying ``text`` with ``voice``, or a
    synthesized noise ``noise``."""

    text: str
    allison: str | None = None
    voice: str | None = None
    noise: str | None = None
    span_s: tuple[float, float] | None = None

    def describe(self) -> str:
        if self.allison is not None and self.span_s is not None:
            return f"{self.allison}.wav {self.span_s[0]:g}–{self.span_s[1]:g} s"
        if self.allison is not None:
            return f"{self.allison}.wav"
        if self.voice is not None:
            return f"espeak-ng -v {self.voice} {self.text!r}"
        return f"synthesized {self.noise}"


# group -> kind; a group ending in "-pause" or "-carrier" holds a deliberate mid-turn
# hesitation (a "-carrier" one: a carrier phrase, the pause, then the answer itself).
GROUP_KINDS = {
    "menu": "menu",
    "menu-pause": "menu",
    "menu-carrier": "menu",
    "digits-carrier": "digits",
    "background-10db": "background",
    "background-16db": "background",
    "background-22db": "background",
    "yes-no": "yes_no",
    "digits": "digits",
    "digits-pause": "digits",
    "number": "number",
    "number-pause": "number",
    "text": "text",
    "text-pause": "text",
    "noise": "noise",
    "barge": "barge",
}


@dataclass(frozen=True)
class Talk:
    """Other people talking in the caller's room: ``sentences`` one after another, TALK_GAP_S
    apart, each brought to the same level (a steady background), round again when a turn
    needs more. ``who`` says whose voices they are, for the source description."""

    name: str
    who: str
    sentences: tuple[Clip, ...]


@dataclass(frozen=True)
class Behind:
    """``talk`` behind a caller's turn, ``db`` under the caller's level, starting with its
    sentence ``first`` and playing alone for ``lead_s`` before the caller speaks."""

    talk: Talk
    db: int
    lead_s: float
    first: int


@dataclass(frozen=True)
class Turn:
    name: str  # file name without .wav
    group: str  # a key of GROUP_KINDS
    answer: str | None
    clips: tuple[Clip, ...]
    gaps_s: tuple[float, ...] = ()  # silence between consecutive clips (speech to speech)
    about: str = ""  # extra words for the source description
    peak: float = PEAK  # target peak (noise bursts use their own level)
    behind: Behind | None = None  # someone else talking (the background groups)

    def __post_init__(self) -> None:
        if len(self.gaps_s) != len(self.clips) - 1:
            raise ValueError(f"{self.name}: {len(self.clips)} clips, {len(self.gaps_s)} gaps")

    @property
    def kind(self) -> str:
        return GROUP_KINDS[self.group]

    @property
    def said(self) -> str:
        return " ".join(c.text for c in self.clips if c.text)

    @property
    def source(self) -> str:
        if all(c.noise for c in self.clips):
            return self.about
        if all(c.allison for c in self.clips):
            head = "Allison (asterisk-core-sounds-en): " + " + ".join(
                c.describe() for c in self.clips
            )
        else:
            voices = sorted({c.voice for c in self.clips if c.voice})
            head = f"espeak-ng -v {'/'.join(voices)} -s {ESPEAK_SPEED}"
        pauses = [g for g in self.gaps_s if g >= MIN_PAUSE_S]
        if len(set(self.gaps_s)) == 1 and len(self.gaps_s) > 1 and pauses:
            head += f", {pauses[0]:g} s apart"
        elif pauses:
            head += ", " + " and ".join(f"{g:g} s" for g in pauses) + " pause"
        if self.behind is not None:
            talk = self.behind.talk
            who = talk.who
            if who == "Allison":
                who += " (" + ", ".join(dict.fromkeys(c.describe() for c in talk.sentences)) + ")"
            head += f"; behind: {who}, {self.behind.db} dB under"
        return head


def al(rel: str, text: str) -> Clip:
    return Clip(text, allison=rel)


def allison_turn(
    name: str, group: str, answer: str, *clips: Clip, gaps_s: tuple[float, ...] = ()
) -> Turn:
    return Turn(name, group, answer, clips, gaps_s or (JOIN_S,) * (len(clips) - 1))


def phrase(name: str, group: str, answer: str, text: str, voice: str) -> Turn:
    """espeak-ng saying ``text`` in one go."""
    return Turn(name, group, answer, (Clip(text, voice=voice),))


def paused(
    name: str, group: str, answer: str, voice: str, first: str, rest: str, pause_s: float
) -> Turn:
    """espeak-ng saying ``first``, a pause, then ``rest`` (two utterances)."""
    clips = (Clip(first, voice=voice), Clip(rest, voice=voice))
    return Turn(name, group, answer, clips, (pause_s,))


def digits(digit_string: str, gap_s: float) -> Turn:
    """Allison's digits, ``gap_s`` apart."""
    clips = tuple(al(f"digits/{d}", DIGIT_WORDS[int(d)]) for d in digit_string)
    if gap_s == DIGIT_GAP_S:
        name, group = f"digits-{digit_string}", "digits"
    else:
        name, group = f"digits-pause{round(gap_s * 1000)}-{digit_string}", "digits-pause"
    return Turn(name, group, digit_string, clips, (gap_s,) * (len(clips) - 1))


def noise(name: str, about: str, peak_dbfs: float) -> Turn:
    peak = 32767 * 10 ** (peak_dbfs / 20)
    return Turn(name, "noise", None, (Clip("", noise=name),), about=about, peak=peak)


# whisper tiny.en is fragile on espeak: each phrase/voice below is one it heard in every
# condition tried (as is, with 0.2 s more silence, 8 dB quieter, both, 0.5 s + 1 s more
# silence). Misheard, and so not used: "an operator" ("the radar", "not the radar", "an hour
# for mango", in every voice), "opening hours" in en-gb ("so, opening our land"), "check my
# balance" in en-gb ("check my mountains") and en-us ("I can't my balance"), "an extension
# please" ("an extension clean"), "extension" alone ("expansion").
MENU = [
    allison_turn("menu-hours-allison", "menu", "hours", al("hours", "hours")),
    allison_turn("menu-extension-allison", "menu", "extension", al("extension", "extension")),
    phrase("menu-hours-en-us-m3", "menu", "hours", "opening hours", "en-us+m3"),
    phrase("menu-hours-en-us-f2", "menu", "hours", "opening hours", "en-us+f2"),
    phrase("menu-balance-en-gb", "menu", "balance", "my balance", "en-gb"),
    phrase("menu-balance-en-gb-x-rp", "menu", "balance", "my balance", "en-gb-x-rp"),
    phrase("menu-balance-check-en-us-f3", "menu", "balance", "check my balance", "en-us+f3"),
    phrase("menu-operator-en-gb", "menu", "operator", "operator", "en-gb"),
    phrase("menu-operator-the-en-gb-f2", "menu", "operator", "the operator", "en-gb+f2"),
    phrase("menu-operator-need-en-us", "menu", "operator", "I need an operator", "en-us"),
    phrase("menu-extension-need-en-us-f2", "menu", "extension", "I need an extension", "en-us+f2"),
    phrase(
        "menu-extension-number-en-gb-x-rp", "menu", "extension", "an extension number", "en-gb-x-rp"
    ),
]

# intent -> (first words, the rest, voice) for the pauses PAUSES_MS. espeak's "hours" on its
# own is heard as "hour", so the hours turns end in "hours please" or "opening hours" (in
# en-us+f3, the one voice whisper hears there).
PAUSES_MS = (300, 500, 700, 900)
MENU_PAUSES = {
    "balance": [("I would like", "my balance", "en-gb")] * 4,
    "hours": [
        ("opening", "hours please", "en-us+f3"),
        ("what are your", "opening hours", "en-us+f3"),
        ("opening", "hours please", "en-us+f3"),
        ("what are your", "opening hours", "en-us+f3"),
    ],
    "operator": [
        ("I want to speak to", "an operator", "en-gb"),
        ("I want to speak to", "an operator", "en-gb-x-rp"),
        ("I want to speak to", "an operator", "en-gb+f2"),
        ("I want to speak to", "an operator", "en-gb-x-rp"),
    ],
    "extension": [
        ("I would like", "an extension", "en-us"),
        ("I would like", "an extension", "en-gb"),
        ("I would like", "an extension", "en-us"),
        ("I would like", "an extension", "en-gb"),
    ],
}
MENU_PAUSED = [
    paused(f"menu-pause{ms}-{intent}", "menu-pause", intent, voice, first, rest, ms / 1000)
    for intent, rows in MENU_PAUSES.items()
    for ms, (first, rest, voice) in zip(PAUSES_MS, rows, strict=True)
]

YES_NO = [
    phrase("yesno-yes-en-us", "yes-no", "yes", "yes", "en-us"),
    phrase("yesno-yes-en-gb", "yes-no", "yes", "yes", "en-gb"),
    allison_turn("yesno-no-allison", "yes-no", "no", al("vm-no", "no")),
    phrase("yesno-no-en-us", "yes-no", "no", "no", "en-us"),
    phrase("yesno-yes-please-en-gb", "yes-no", "yes", "yes please", "en-gb"),
    phrase("yesno-yes-please-en-us", "yes-no", "yes", "yes please", "en-us"),
    phrase("yesno-no-thanks-en-us", "yes-no", "no", "no thanks", "en-us"),
    phrase("yesno-no-thanks-en-gb", "yes-no", "no", "no thanks", "en-gb"),
]

DIGITS = [
    *(digits(s, DIGIT_GAP_S) for s in ("421", "907", "583", "4217", "3580", "1234")),
    *(digits(s, 0.7) for s in ("421", "907", "4217", "3580", "1234")),
    digits("852", 0.5),
    digits("6093", 0.5),
    digits("738", 0.9),
    digits("2046", 0.9),
]

ONE_HUNDRED_AND_TWENTY = (
    al("digits/1", "one"),
    al("digits/hundred", "hundred"),
    al("vm-and", "and"),
    al("digits/20", "twenty"),
)
NUMBERS = [
    allison_turn(
        "number-42-allison", "number", "42", al("digits/40", "forty"), al("digits/2", "two")
    ),
    phrase("number-42-en-us", "number", "42", "forty two", "en-us"),
    allison_turn("number-120-allison", "number", "120", *ONE_HUNDRED_AND_TWENTY),
    phrase("number-120-en-us-f2", "number", "120", "one hundred and twenty", "en-us+f2"),
    paused(
        "number-pause600-120-en-us-f2",
        "number-pause",
        "120",
        "en-us+f2",
        "one hundred",
        "and twenty",
        0.6,
    ),
    allison_turn(
        "number-pause700-120-allison",
        "number-pause",
        "120",
        *ONE_HUNDRED_AND_TWENTY,
        gaps_s=(JOIN_S, 0.7, JOIN_S),
    ),
]

CARD = "I lost my card yesterday"
# whisper hears espeak's "my parcel has not arrived" as "my powerful to not arrive" or "my
# parcel turned not arrived" in every voice tried; "did not arrive" it gets.
PARCEL = "my parcel did not arrive"
TEXTS = [
    phrase("text-card-en-us", "text", CARD, CARD, "en-us"),
    phrase("text-card-en-us-f3", "text", CARD, CARD, "en-us+f3"),
    phrase("text-parcel-en-gb", "text", PARCEL, PARCEL, "en-gb"),
    phrase("text-parcel-en-gb-x-rp", "text", PARCEL, PARCEL, "en-gb-x-rp"),
    paused(
        "text-pause600-card-en-us-f3",
        "text-pause",
        CARD,
        "en-us+f3",
        "I lost my card",
        "yesterday",
        0.6,
    ),
    paused(
        "text-pause800-card-en-us-f3",
        "text-pause",
        CARD,
        "en-us+f3",
        "I lost my card",
        "yesterday",
        0.8,
    ),
    paused(
        "text-pause600-parcel-en-gb-f2",
        "text-pause",
        PARCEL,
        "en-gb+f2",
        "my parcel",
        "did not arrive",
        0.6,
    ),
    paused(
        "text-pause800-parcel-en-gb",
        "text-pause",
        PARCEL,
        "en-gb",
        "my parcel",
        "did not arrive",
        0.8,
    ),
]

# Real human free text: Allison's recordings, whole sentences and, for the pauses, the carrier
# phrases Asterisk's voicemail joins ("The person at extension" … "is unavailable"), which she
# recorded to be continued. Chosen as sentences a caller could say, before any was measured.
PERSON = al("vm-theperson", "The person at extension")
YOU_HAVE_TWO = (al("vm-youhave", "You have"), al("digits/2", "two"))
NEW_MESSAGES = (al("vm-INBOX", "new"), al("vm-messages", "messages"))
TEXTS += [
    allison_turn("text-later-allison", "text", "Please try your call again later",
                 al("please-try-call-later", "Please try your call again later")),
    allison_turn("text-circuits-allison", "text", "All circuits are busy now",
                 al("all-circuits-busy-now", "All circuits are busy now")),
    allison_turn("text-nobody-allison", "text",
                 "Nobody is available to take your call at the moment",
                 al("vm-nobodyavail", "Nobody is available to take your call at the moment")),
    allison_turn("text-wrong-allison", "text", "Something is terribly wrong",
                 al("tt-somethingwrong", "Something is terribly wrong")),
    allison_turn("text-pause600-unavailable-allison", "text-pause",
                 "The person at extension is unavailable",
                 PERSON, al("vm-isunavail", "is unavailable"), gaps_s=(0.6,)),
    allison_turn("text-pause800-on-the-phone-allison", "text-pause",
                 "The person at extension is on the phone",
                 PERSON, al("vm-isonphone", "is on the phone"), gaps_s=(0.8,)),
    allison_turn("text-pause600-messages-allison", "text-pause", "You have two new messages",
                 *YOU_HAVE_TWO, *NEW_MESSAGES, gaps_s=(JOIN_S, 0.6, JOIN_S)),
    allison_turn("text-pause800-messages-allison", "text-pause", "You have two new messages",
                 *YOU_HAVE_TWO, *NEW_MESSAGES, gaps_s=(0.8, JOIN_S, JOIN_S)),
]  # fmt: skip

NOISES = [
    noise(
        "noise-cough",
        "synthesized cough: 300-3000 Hz band-passed noise, 8 ms attack, "
        "exponential decay (~250 ms)",
        -4.0,
    ),
    noise(
        "noise-cough-double",
        "synthesized double cough: two band-passed bursts "
        "(250-2500 Hz, 200-3000 Hz) 150 ms apart, the second weaker",
        -3.5,
    ),
    noise("noise-click", "synthesized click: 8 ms impulse with a 2 kHz ring", -6.0),
    noise(
        "noise-crackle",
        "synthesized line crackle: 600 ms of random pops (about 40 a second) over faint hiss",
        -9.0,
    ),
    noise("noise-hiss", "synthesized hiss: 400 ms of 300-3400 Hz noise, 20 ms fades", -15.0),
    noise(
        "noise-breath",
        "synthesized breath: 150-1800 Hz noise, a 550 ms rise-and-fall envelope",
        -19.0,
    ),
]

BARGE = [
    allison_turn("barge-hours-allison", "barge", "hours", al("hours", "hours")),
    phrase("barge-operator-en-gb", "barge", "operator", "operator please", "en-gb"),
]

# ---- paused answers: a carrier phrase, a pause, then the word that matters ----------------

# Each carrier with each pause once, each pause with each intent once (a Latin square), and
# every carrier with every intent but one: espeak-ng's bare "balance" after "um the" is heard
# as "violence", "Madeline" or "mallin" in every voice tried, so "um the" takes the operator
# twice and "I need" the balance. What follows the pause is a phrase of the 311 menu in the
# carrier's grammar, in a voice whisper hears it in (the espeak "hours" only in en-us+f3, see
# MENU_PAUSES). Checked on takes 0-2 (voicebot/tools/takes.py), not only on the files.
CARRIER_PAUSES_MS = (300, 500, 800, 1000)
CARRIERS: dict[str, tuple[str, tuple[str, str, str, str]]] = {
    # carrier -> (name part, the intent after each pause of CARRIER_PAUSES_MS)
    "I would like": ("would-like", ("hours", "balance", "operator", "extension")),
    "can I get": ("can-i-get", ("balance", "operator", "extension", "hours")),
    "um the": ("um-the", ("operator", "extension", "hours", "operator")),
    "I need": ("i-need", ("extension", "hours", "balance", "balance")),
}
AFTER_CARRIER: dict[str, dict[str, tuple[str, str]]] = {
    # carrier -> intent -> (what follows the pause, voice)
    "I would like": {
        "hours": ("the opening hours", "en-us+f3"), "balance": ("my balance", "en-gb"),
        "operator": ("an operator", "en-gb-x-rp"), "extension": ("an extension", "en-us"),
    },
    "can I get": {
        "hours": ("the opening hours", "en-us+f3"), "balance": ("my balance", "en-gb-x-rp"),
        "operator": ("an operator", "en-gb"), "extension": ("an extension", "en-gb"),
    },
    "um the": {
        "hours": ("opening hours", "en-us+f3"), "operator": ("operator", "en-gb"),
        "extension": ("extension number", "en-gb-x-rp"),
    },
    "I need": {
        "hours": ("the opening hours", "en-us+f3"), "balance": ("my balance", "en-gb"),
        "operator": ("an operator", "en-gb+f2"), "extension": ("an extension", "en-gb"),
    },
}  # fmt: skip


def menu_carrier(row: int, column: int) -> Turn:
    carrier = list(CARRIERS)[row]
    slug, intents = CARRIERS[carrier]
    intent = intents[column]
    words, voice = AFTER_CARRIER[carrier][intent]
    ms = CARRIER_PAUSES_MS[column]
    name = f"menu-carrier{ms}-{slug}-{intent}"
    return paused(name, "menu-carrier", intent, voice, carrier, words, ms / 1000)


MENU_CARRIERS = [
    menu_carrier(row, column)
    for row in range(len(CARRIERS))
    for column in range(len(CARRIER_PAUSES_MS))
]

# The same for digits, all Allison's (whisper tiny.en hears espeak-ng's digits badly: "nine
# oh seven five" as "907 times", "five eight three" as "I made three"): a carrier she
# recorded to be followed by a number or said as a label ("the number I have is", "telephone
# number", "number", "extension"), the pause, then her digits, fluent. Not "to extension"
# ("to" is heard as "2") nor "583" after a second's pause ("5 8 3 5 8 3").
DIGIT_CARRIERS = (
    ("vm-num-i-have", "the number I have is", "number-i-have"),
    ("telephone-number", "telephone number", "telephone-number"),
    ("number", "number", "number"),
    ("extension", "extension", "extension"),
)
CARRIER_DIGITS = ("421", "762", "9075", "3580")


def digits_carrier(row: int, column: int) -> Turn:
    recording, carrier, slug = DIGIT_CARRIERS[row]
    answer = CARRIER_DIGITS[(row + column) % len(CARRIER_DIGITS)]
    ms = CARRIER_PAUSES_MS[column]
    digit_clips = (al(f"digits/{d}", DIGIT_WORDS[int(d)]) for d in answer)
    clips = (al(recording, carrier), *digit_clips)
    gaps = (ms / 1000, *(DIGIT_GAP_S,) * (len(answer) - 1))
    return Turn(f"digits-carrier{ms}-{slug}-{answer}", "digits-carrier", answer, clips, gaps)


DIGITS_CARRIERS = [
    digits_carrier(row, column)
    for row in range(len(DIGIT_CARRIERS))
    for column in range(len(CARRIER_PAUSES_MS))
]

# ---- background talk: another voice behind the caller ------------------------------------

# Sentences of Allison's that name a menu item (core-sounds-en.txt); her long IVR greeting's
# last sentence alone (its span found by its pauses).
ALLISON_SAYS = {
    "transfer": "Please hold while I try that extension.",
    "invalid": "I am sorry, that's not a valid extension. Please try again.",
    "agent-newlocation": "Please enter a new extension, followed by pound.",
    "vm-forward": "Press 1 to enter an extension, press 2 to use the directory",
    "pbx-invalidpark": "I am sorry, there is no call parked on that extension. Please try again.",
    "vm-reachoper": "press 0 to reach an operator",
    "all-circuits-busy-now": "All circuits are busy now",
    "please-try-call-later": "Please try your call again later",
}
IVR_OPERATOR = Clip("For an operator, press zero.", allison="basic-pbx-ivr-main",
                    span_s=(22.85, 25.39))  # fmt: skip


def allison_says(*names: str) -> tuple[Clip, ...]:
    return tuple(IVR_OPERATOR if n == "ivr-operator" else al(n, ALLISON_SAYS[n]) for n in names)


def conversation(*lines: str, voices: tuple[str, str] = ("en-gb-scotland+m7", "en-029+f4")
                 ) -> tuple[Clip, ...]:  # fmt: skip
    """Two espeak-ng voices taking turns (no caller in this set speaks in either)."""
    return tuple(Clip(line, voice=voices[i % 2]) for i, line in enumerate(lines))


# The background never says the answer of the caller it is behind, and says other menu words
# (so a call routed on the background's words shows up as wrong). Allison talks behind the
# espeak-ng callers, espeak-ng voices behind Allison.
TALKS = {
    "extension+operator": Talk("extension+operator", "Allison", allison_says(
        "transfer", "vm-reachoper", "invalid", "ivr-operator", "agent-newlocation")),
    "extension": Talk("extension", "Allison", allison_says(
        "transfer", "invalid", "agent-newlocation", "vm-forward", "pbx-invalidpark")),
    "operator": Talk("operator", "Allison", allison_says(
        "vm-reachoper", "all-circuits-busy-now", "ivr-operator", "please-try-call-later")),
    "not-hours": Talk("not-hours", "espeak-ng en-gb-scotland+m7 and en-029+f4", conversation(
        "Did you ring the operator about it?",
        "Yes, she gave me his extension, but nobody answered.",
        "Then ask the operator for the extension again.",
        "I will check the balance first.")),
    "not-extension": Talk("not-extension", "espeak-ng en-gb-scotland+m7 and en-029+f4",
                          conversation(
        "I asked the operator to check my balance.",
        "And what did the operator say?",
        "That the balance is wrong, and to call during opening hours.",
        "Then ask for the operator again.")),
    "not-hours-2": Talk("not-hours-2", "espeak-ng en-gb-x-gbcwmd+m2 and en-gb-x-gbclan+f5",
                        conversation(
        "Just dial the extension.",
        "Which extension? The operator never said.",
        "Then ring the operator and check your balance while you are at it.",
        voices=("en-gb-x-gbcwmd+m2", "en-gb-x-gbclan+f5"))),
}  # fmt: skip
BACKGROUND_DB = (10, 16, 22)
BACKGROUND_LEADS_S = (1.0, 2.0, 3.0)
# caller turn (one of MENU) -> (talk, its first sentence) behind it at each of BACKGROUND_DB.
# Chosen so that whisper tiny.en hears the caller's answer in the caller's own span (what a
# bot that tells the caller's voice from the background would decode) on takes 0-5: behind
# the other choices it heard Allison's "hours" as "I'll run my", "How are you?", "opening
# hours" as "Oh, thank you." at 10 dB; espeak's "I need an extension" (en-us+f2) was heard as
# "I need another plan" or "I need an expansion" behind every talk on some take.
BEHIND_CALLERS: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = (
    ("menu-hours-allison", (("not-hours-2", 1), ("not-hours", 2), ("not-hours", 0))),
    ("menu-extension-allison", (("not-extension", 0),) * 3),
    ("menu-operator-en-gb", (("extension", 0),) * 3),
    ("menu-balance-en-gb", (("extension+operator", 1), ("extension+operator", 0),
                            ("extension+operator", 0))),
    ("menu-extension-number-en-gb-x-rp", (("operator", 0), ("operator", 1), ("operator", 0))),
    ("menu-hours-en-us-m3", (("extension+operator", 3), ("extension+operator", 0),
                             ("extension+operator", 0))),
)  # fmt: skip


def with_background(row: int, column: int) -> Turn:
    caller_name, behind_at = BEHIND_CALLERS[row]
    caller = next(t for t in MENU if t.name == caller_name)
    talk_name, first = behind_at[column]
    db = BACKGROUND_DB[column]
    lead = BACKGROUND_LEADS_S[(row + column) % len(BACKGROUND_LEADS_S)]
    behind = Behind(TALKS[talk_name], db, lead, first)
    name = caller_name.replace("menu-", f"background{db}-", 1)
    return Turn(name, f"background-{db}db", caller.answer, caller.clips, caller.gaps_s,
                behind=behind)  # fmt: skip


BACKGROUNDS = [
    with_background(row, column)
    for column in range(len(BACKGROUND_DB))
    for row in range(len(BEHIND_CALLERS))
]

TURNS: tuple[Turn, ...] = (
    *MENU,
    *MENU_PAUSED,
    *MENU_CARRIERS,
    *YES_NO,
    *DIGITS,
    *DIGITS_CARRIERS,
    *NUMBERS,
    *TEXTS,
    *NOISES,
    *BARGE,
    *BACKGROUNDS,
)

# ---- sources -------------------------------------------------------------------------------


def read_wav(data: bytes | Path) -> tuple[np.ndarray, int]:
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with wave.open(source, "rb") as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"{data if isinstance(data, Path) else 'espeak'}: not 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        if w.getnchannels() > 1:
            pcm = pcm.reshape(-1, w.getnchannels()).mean(axis=1)
        return pcm, w.getframerate()


def to_8k(pcm: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE:
        return pcm
    return soxr.resample(pcm.astype(np.float32), rate, RATE, quality="VHQ").astype(np.float64)


@cache
def espeak(text: str, voice: str) -> np.ndarray:
    return to_8k(*read_wav(espeak_wav(text, voice, ESPEAK_SPEED)))


def allison(rel: str) -> np.ndarray:
    return to_8k(*read_wav(ALLISON_DIR / f"{rel}.wav"))


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def _band(samples: np.ndarray, low: float, high: float) -> np.ndarray:
    """Band-limit by zeroing FFT bins outside ``low..high`` Hz (with 50 Hz cosine skirts)."""
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(samples.size, 1 / RATE)
    skirt = 50.0
    gain = np.clip(np.minimum((freqs - low) / skirt + 1, (high - freqs) / skirt + 1), 0, 1)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    return np.fft.irfft(spectrum * gain, n=samples.size)


def _seconds(s: float) -> np.ndarray:
    return np.arange(round(s * RATE)) / RATE


def _burst(
    rng: np.random.Generator, low: float, high: float, length_s: float, decay_s: float
) -> np.ndarray:
    """A cough-like burst: band-passed noise, 8 ms rise, exponential decay."""
    t = _seconds(length_s)
    envelope = np.minimum(t / 0.008, 1.0) * np.exp(-np.maximum(t - 0.008, 0) / decay_s)
    return _band(rng.standard_normal(t.size), low, high) * envelope


def _cough(rng: np.random.Generator) -> np.ndarray:
    return _burst(rng, 300, 3000, 0.32, 0.065)


def _cough_double(rng: np.random.Generator) -> np.ndarray:
    first = _burst(rng, 250, 2500, 0.26, 0.05)
    second = 0.7 * _burst(rng, 200, 3000, 0.24, 0.045)
    return np.concatenate([first, np.zeros(round(0.15 * RATE)), second])


def _click(rng: np.random.Generator) -> np.ndarray:
    t = _seconds(0.008)
    ring = np.sin(2 * np.pi * 2000 * t) * np.exp(-t / 0.002)
    ring[0] += 1.5  # the impulse itself
    return ring + 0.05 * rng.standard_normal(t.size) * np.exp(-t / 0.002)


def _crackle(rng: np.random.Generator) -> np.ndarray:
    t = _seconds(0.6)
    out = _band(rng.standard_normal(t.size), 300, 3400) * 0.01
    for at in np.flatnonzero(rng.random(t.size) < 40 / RATE):
        length = int(rng.integers(8, 24))  # 1-3 ms pops
        pop = rng.standard_normal(length) * np.exp(-np.arange(length) / (length / 3))
        pop *= rng.uniform(0.2, 1.0)
        end = min(int(at) + length, t.size)
        out[at:end] += pop[: end - at]
    return out


def _hiss(rng: np.random.Generator) -> np.ndarray:
    t = _seconds(0.4)
    envelope = np.minimum(np.minimum(t / 0.02, (t[-1] - t) / 0.02), 1.0)
    return _band(rng.standard_normal(t.size), 300, 3400) * envelope


def _breath(rng: np.random.Generator) -> np.ndarray:
    t = _seconds(0.55)
    envelope = np.sin(np.pi * np.clip(t / 0.55, 0, 1)) ** 2 * (1 + 0.6 * np.exp(-t / 0.15))
    return _band(rng.standard_normal(t.size), 150, 1800) * envelope


NOISE_MAKERS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "noise-cough": _cough,
    "noise-cough-double": _cough_double,
    "noise-click": _click,
    "noise-crackle": _crackle,
    "noise-hiss": _hiss,
    "noise-breath": _breath,
}


def clip_audio(clip: Clip) -> np.ndarray:
    if clip.allison is not None and clip.span_s is not None:
        start, end = (round(t * RATE) for t in clip.span_s)
        return allison(clip.allison)[start:end]
    if clip.allison is not None:
        return allison(clip.allison)
    if clip.voice is not None:
        return espeak(clip.text, clip.voice)
    assert clip.noise is not None
    return NOISE_MAKERS[clip.noise](_rng(clip.noise))


# ---- building ------------------------------------------------------------------------------


def trim(pcm: np.ndarray, name: str) -> np.ndarray:
    """The 10 ms frames from the first to the last voiced one (RMS above SPEECH_RMS), with a
    short fade where the cut goes through sound."""
    count = pcm.size // FRAME
    frames = np.pad(pcm, (0, (count + 1) * FRAME - pcm.size))[: (count + 1) * FRAME]
    rms = np.sqrt(np.mean(frames.reshape(-1, FRAME) ** 2, axis=1))
    loud = np.flatnonzero(rms > SPEECH_RMS)
    if loud.size == 0:
        raise SystemExit(f"{name}: no voiced frame in a source clip")
    start, end = int(loud[0]) * FRAME, (int(loud[-1]) + 1) * FRAME
    out = frames[start:end].copy()
    fade = round(FADE_S * RATE)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
    # Fade only where the cut goes through sound (not at a burst that starts from zero).
    if np.any(frames[:start]):
        out[:fade] *= ramp
    if np.any(frames[end:]):
        out[-fade:] *= ramp[::-1]
    return out


@dataclass
class Built:
    pcm: np.ndarray
    speech_start_s: float
    voice_end_s: float
    pauses_s: list[list[float]] = field(default_factory=list)
    background: Heard | None = None


@dataclass
class Heard:
    """The background of a built turn: where it plays and what it says there."""

    start_s: float
    end_s: float
    text: str


def build(turn: Turn) -> Built:
    raw = [clip_audio(c) for c in turn.clips]
    return assemble(turn.name, raw, turn.gaps_s, turn.peak, turn.behind)


def assemble(
    name: str,
    raw: list[np.ndarray],
    gaps_s: tuple[float, ...],
    peak: float = PEAK,
    behind: Behind | None = None,
) -> Built:
    """A turn from its clips' audio at RATE (``raw``) and the silences between them, as the
    module docstring says (scripts/make-russian-turns.py builds its turns with it too)."""
    gain = peak / max(float(np.max(np.abs(r))) for r in raw)
    parts = [trim(r * gain, name) for r in raw]
    pieces = []
    at = 0
    pauses: list[list[float]] = []
    for index, part in enumerate(parts):
        if index:
            gap = round(gaps_s[index - 1] * RATE)
            if gaps_s[index - 1] >= MIN_PAUSE_S:
                pauses.append([at, at + gap])
            pieces.append(np.zeros(gap))
            at += gap
        pieces.append(part)
        at += part.size
    speech = np.concatenate(pieces)
    margin = np.zeros(round(MARGIN_S * RATE))
    if behind is None:
        lead, mix, heard = 0, speech, None
    else:
        lead, mix, heard = with_talk(name, behind, speech)
    pcm = np.clip(np.round(np.concatenate([margin, mix, margin])), -32768, 32767)
    start = margin.size + lead
    return Built(
        pcm.astype(np.int16),
        start / RATE,
        (start + speech.size) / RATE,
        [[(start + a) / RATE, (start + b) / RATE] for a, b in pauses],
        heard,
    )


# ---- background talk ------------------------------------------------------------------------

TALK_GAP_S = 0.3  # between the background's sentences
TALK_TAIL_S = 1.5  # the background goes on this long after the caller's last word
# The background's level where the caller speaks may differ this much from its level alone
# (what background_db is measured on); see with_talk.
TALK_STEADY_DB = 2.0
LEAD_STEPS = 10
MIX_LIMIT = 32767 * 10 ** (-1 / 20)  # a mix louder than -1 dBFS is turned down as a whole


def level(samples: np.ndarray) -> float:
    """Mean power over a span, as an RMS (int16 scale): how loud a speaker is there."""
    return float(np.sqrt(np.mean(np.asarray(samples, dtype=np.float64) ** 2)))


def sentence_audio(clip: Clip, name: str) -> np.ndarray:
    """One sentence of a talk, trimmed like a caller's clip, at RMS 1000."""
    raw = clip_audio(clip)
    trimmed = trim(raw * (PEAK / float(np.max(np.abs(raw)))), name)
    return trimmed * (1000.0 / level(trimmed))


def talk_audio(talk: Talk, first: int, length: int) -> tuple[np.ndarray, str]:
    """``length`` samples of ``talk`` from its sentence ``first`` on (round again if need be),
    with what it says there (a sentence cut short ends in "…")."""
    sentences = [sentence_audio(c, f"talk {talk.name}") for c in talk.sentences]
    pieces: list[np.ndarray] = []
    said: list[str] = []
    at, index = 0, first
    while at < length:
        if pieces:
            pieces.append(np.zeros(round(TALK_GAP_S * RATE)))
            at += pieces[-1].size
            if at >= length:
                break
        sentence = sentences[index % len(sentences)]
        text = talk.sentences[index % len(sentences)].text
        said.append(text if at + sentence.size <= length else text.rstrip(".,") + " …")
        pieces.append(sentence)
        at += sentence.size
        index += 1
    audio = np.concatenate(pieces)[:length]
    fade = round(0.02 * RATE)
    audio[-fade:] *= np.linspace(1.0, 0.0, fade)
    return audio, " ".join(said)


def with_talk(name: str, behind: Behind, speech: np.ndarray) -> tuple[int, np.ndarray, Heard]:
    """The caller's ``speech`` with ``behind``'s talk under it: the talk alone for about
    ``behind.lead_s``, then under the caller, then alone again for TALK_TAIL_S. The talk's
    level where it is alone is ``behind.db`` under the caller's (``level`` of each).

    Speech comes in sentences with pauses between them, so a caller's half second may fall
    where the talk is between sentences: the lead is lengthened in 0.1 s steps (at most
    LEAD_STEPS of them) until the talk under the caller is within TALK_STEADY_DB of its level
    alone, so that "N dB under the caller" also holds while the caller speaks."""
    tail = round(TALK_TAIL_S * RATE)
    drifts = []
    for step in range(LEAD_STEPS):
        lead = round((behind.lead_s + step / 10) * RATE)
        talk, said = talk_audio(behind.talk, behind.first, lead + speech.size + tail)
        under = slice(lead, lead + speech.size)
        alone = np.concatenate([talk[: under.start], talk[under.stop :]])
        drift = 20 * np.log10(level(talk[under]) / level(alone))
        drifts.append(f"{drift:+.1f}")
        if abs(drift) <= TALK_STEADY_DB:
            break
    else:
        raise SystemExit(
            f"{name}: the background's level under the caller is off its level alone by "
            f"{', '.join(drifts)} dB: choose another first sentence"
        )
    mix = talk * (level(speech) * 10 ** (-behind.db / 20) / level(alone))
    mix[under] += speech
    loudest = float(np.max(np.abs(mix)))
    if loudest > MIX_LIMIT:
        mix *= MIX_LIMIT / loudest
    margin = round(MARGIN_S * RATE)
    heard = Heard(margin / RATE, (margin + mix.size) / RATE, said)
    return lead, mix, heard


def label(turn: Turn, built: Built) -> dict[str, object]:
    heard = built.background
    return {
        "file": f"{turn.name}.wav",
        "group": turn.group,
        "kind": turn.kind,
        "text": turn.said,
        "answer": turn.answer,
        "digits_length": len(turn.answer) if turn.kind == "digits" and turn.answer else None,
        "duration_s": round(built.pcm.size / RATE, 3),
        "speech_start_s": round(built.speech_start_s, 3),
        "voice_end_s": round(built.voice_end_s, 3),
        "pauses_s": [[round(a, 3), round(b, 3)] for a, b in built.pauses_s],
        "source": turn.source + (levels(built) if turn.kind == "noise" else ""),
        "background_db": turn.behind.db if turn.behind else None,
        "background_start_s": round(heard.start_s, 3) if heard else None,
        "background_end_s": round(heard.end_s, 3) if heard else None,
        "background_text": heard.text if heard else None,
    }


def levels(built: Built) -> str:
    """The measured peak and RMS of a noise burst."""
    burst = built.pcm[round(built.speech_start_s * RATE) : round(built.voice_end_s * RATE)]
    burst = burst.astype(np.float64)
    peak = 20 * np.log10(np.max(np.abs(burst)) / 32768)
    rms = 20 * np.log10(np.sqrt(np.mean(burst**2)) / 32768)
    return f" (peak {peak:.1f} dBFS, RMS {rms:.1f} dBFS)"


def labels_json(entries: list[dict[str, object]]) -> str:
    """One entry per line: easy to read and to diff."""
    lines = ",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in entries)
    return f"[\n{lines}\n]\n"


README_HEAD = """\
# Labelled caller turns for the endpointing benchmark

Written by `scripts/make-turn-set.py`, this README included (edit the script, not the files):

```sh
.venv/bin/python scripts/make-turn-set.py          # rewrite the set
.venv/bin/python scripts/make-turn-set.py --check  # only compare (exit 1 if anything differs)
```

What a test caller (sipp) says to the bot, one turn per file: 8 kHz mono 16-bit WAV, peak
-3 dBFS (noise bursts at their own level). The benchmark measures voice-to-voice latency from
`voice_end_s` (the caller's last voiced audio) to the bot's first voiced frame, and counts
false cut-offs: the bot answering before `voice_end_s`, typically inside one of `pauses_s`.
Noise bursts are played over a bot prompt and must not stop it; the barge-in turns are real
speech over a prompt and must. The background turns carry another speaker's talk from before
the caller speaks (it is there during the bot's greeting) to after: the bot must neither stop
its greeting for it nor take its words for the caller's.

## How the files are made

Each turn is a list of clips (one of Allison's recordings, one espeak-ng utterance, or a
synthesized noise) joined by **exact digital silence**. Every clip is scaled by the turn's
gain (the loudest sample of the whole turn to -3 dBFS), then trimmed to its 10 ms frames from
the first to the last whose RMS is above -44 dBFS at that level, with a 3 ms fade where a cut
goes through sound. Clips of one fluent phrase are 50 ms apart ("forty" + "two"), fluent
digits 0.25 s, the mid-turn pauses as listed. 0.1 s of silence goes before the first and
after the last clip. All edges are on the 10 ms frame grid, so the labels are exact:

- `speech_start_s` is 0.1 in every file but the background ones (there it is where the
  caller starts, after the background's lead); `voice_end_s` is the end of the caller's last
  voiced frame (for noise: the end of the burst), and only zeros follow it (in the background
  turns: the background, then zeros);
- `pauses_s` lists every silence of 0.2 s or more that the construction put between two
  clips (start = end of the speech before, end = start of the speech after). Fluent digits
  (0.25 s apart) have them too; the short gaps inside a clip (between espeak's words) or
  between joined clips are not pauses. Groups whose name ends in `-pause` or `-carrier` hold
  a deliberate hesitation of 0.3 s or more (`-carrier`: a carrier phrase such as "I would
  like", "can I get", "um the", "I need", "the number I have is", then 0.3, 0.5, 0.8 or 1.0 s,
  then the answer; every carrier meets every pause once, every pause every menu intent once).

The files end 0.1 s after `voice_end_s` (background turns: after `background_end_s`). sipp
sends no RTP during a `Pause` step, so a bench that wants the bot to keep receiving silence
after the turn should append zeros to the audio it plays.

Speech is Allison Smith's recordings where she has the words (`hours`, `extension`, `vm-no`
"no", the digits, `digits/40`, `digits/hundred`, `vm-and`), else espeak-ng (`espeak-ng -v
VOICE -s 140`, 22.05 kHz resampled to 8 kHz with soxr) in voices and phrases whisper tiny.en
hears correctly (the script's comments list what it misheard). Noise is numpy (`default_rng`
with a fixed seed), band-limited with an FFT mask. The output is the same on every run.
`tests/unit/test_turn_set.py` checks the labels against the audio and the dialog scripts,
and (slow) that whisper tiny.en hears every speech file's answer after a G.711 μ-law round
trip, and the paused and background turns on takes 1 and 2 too.

## Background talk (groups `background-10db`, `-16db`, `-22db`)

Six of the menu callers above (Allison's "hours" and "extension", espeak-ng's "operator", "my
balance", "an extension number", "opening hours") with someone else talking in their room,
10, 16 or 22 dB under them. The background is another speaker, never the caller's voice:
Allison's recorded sentences that name a menu item ("Please hold while I try that
extension.", "press 0 to reach an operator", ...) behind the espeak-ng callers, and
conversations of two espeak-ng voices no caller uses (`en-gb-scotland+m7` and `en-029+f4`,
`en-gb-x-gbcwmd+m2` and `en-gb-x-gbclan+f5`) behind Allison. It never says the answer of the
caller it is behind and says other menu words, so a call routed on the background's words is
routed wrong. Its sentences are each brought to one level and follow each other 0.3 s
apart; it starts at `background_start_s` (0.1 s), talks alone for 1-3.6 s (the lead:
nominally 1, 2 or 3 s, lengthened in 0.1 s steps until its level under the caller is within
2 dB of its level alone), goes on under the caller and for 1.5 s after `voice_end_s`, and
stops at `background_end_s` (20 ms fade).
Which talk goes behind which caller at which level was chosen so that whisper tiny.en hears
the caller's answer in the caller's own span (`speech_start_s`-`voice_end_s` + 0.1 s, what a
bot that tells the caller's voice from the room's would decode) on takes 0-5: a wrong answer
in the bench is then the bot's, not the recogniser's (the slow test checks takes 0-2).

A speaker's level is the mean power (as an RMS) over a span: the caller's over
`speech_start_s`-`voice_end_s` of the caller alone, the background's where it plays alone
(`background_start_s`-`speech_start_s` and `voice_end_s`-`background_end_s`). The background
is scaled so that its level is `background_db` under the caller's; the test estimates the
caller's level from the mix (power over the caller's span minus the background's) and
checks the difference within ±1 dB.

## Seeded takes

A turn is played as several takes (`voicebot/tools/takes.py`: `take(pcm, seed)`): take 0 is
the file; take n ≥ 1 adds a lead of 0-19 ms, a gain within ±0.5 dB, a 300-3400 Hz line noise
at -66 dBFS and TPDF dither, all from an RNG seeded with n, and shifts every labelled time by
its `lead_s`. The bench plays `--seeds N` takes of each turn; a turn right on one take and
wrong on another counts as wrong.

## labels.json

A JSON list, one object per file (one per line):

- `file`: the WAV's name in this directory;
- `group`: `menu`, `menu-pause`, `menu-carrier`, `yes-no`, `digits`, `digits-pause`,
  `digits-carrier`, `number`, `number-pause`, `text`, `text-pause`, `noise`, `barge`,
  `background-10db`, `background-16db`, `background-22db`;
- `kind`: `menu`, `yes_no`, `digits`, `number`, `text`, `noise`, `barge`, `background` (a
  menu answer with talk behind it);
- `text`: what is said (`""` for noise);
- `answer`: what the dialog should end up with: the intent (`hours`, `balance`, `operator`,
  `extension`) for menu, barge and background, `"yes"`/`"no"`, the digit string, the number
  as a string,
  the text; `null` for noise;
- `digits_length`: the number of digits for kind `digits`, else `null`;
- `duration_s`: the length of the file;
- `speech_start_s`: the caller's first voiced sample, in seconds from the file's start;
- `voice_end_s`: the end of the caller's last voiced audio;
- `pauses_s`: `[[start, end], ...]`, the silences between clips (see above);
- `source`: how it was made;
- `background_db`: for the background turns, how far (dB) the background's level is under
  the caller's (10, 16, 22), else `null`;
- `background_start_s`, `background_end_s`: where the background plays (it starts before
  `speech_start_s` and ends after `voice_end_s`), else `null`;
- `background_text`: what the background says in the file (a sentence cut short ends in
  "…"), else `null`.

## Dialog scripts (`scripts/`)

The scripts the bench calls, one per extension (the sandbox Asterisk routes 3XX to a bot
with ARI app voicebot-turns whose scripts dir is this one, so 3XX runs
`3XX.yaml`): 311 menu (intents hours, balance, operator, extension), 312 yes/no, 313 three
digits, 314 four digits, 315 number, 316 free text, 317 the 311 menu behind a ~10 s
greeting with barge-in, for the noise and barge-in turns, and 318 the 311 menu behind a
~5 s greeting with barge-in, for the background turns (the background starts during the
greeting, the caller answers after it). Each answer state says back the
value and hangs up. They are hand-written, not made by the script.

## Licence and attribution

The recordings of Allison's used here, trimmed and joined into the files below, are from the
Asterisk core sound prompts (Debian `asterisk-core-sounds-en-wav`), recorded by **Allison
Smith** (theivrvoice.com), financial contributions by Digium, Inc., © 2003–2010 Allison
Smith, licensed under the **Creative Commons Attribution-ShareAlike 3.0** licence
(https://creativecommons.org/licenses/by-sa/3.0/). The files made from them are adaptations,
shared under the same licence. The other speech is espeak-ng output; the noise is synthesized.
The background turns' talk is Allison's (same licence) or espeak-ng's.

## Files

| file | group | text | answer | voice end (s) | pauses (s) | source |
| --- | --- | --- | --- | --- | --- | --- |
"""


def readme(entries: list[dict[str, object]]) -> str:
    rows = []
    for e in entries:
        pauses = ", ".join(f"{a:.2f}–{b:.2f}" for a, b in e["pauses_s"])  # type: ignore[attr-defined]
        answer = "" if e["answer"] is None else e["answer"]
        source = str(e["source"])
        if e["background_db"] is not None:
            source += (
                f"; caller {e['speech_start_s']:.2f}–{e['voice_end_s']:.2f} s, background "
                f"{e['background_start_s']:.2f}–{e['background_end_s']:.2f} s: "
                f"“{e['background_text']}”"
            )
        rows.append(
            f"| {e['file']} | {e['group']} | {e['text']} | {answer} | {e['voice_end_s']:.2f} "
            f"| {pauses} | {source} |"
        )
    return README_HEAD + "\n".join(rows) + "\n"


def outputs() -> dict[str, bytes]:
    """Every file this script writes into OUT_DIR, by name."""
    files: dict[str, bytes] = {}
    entries = []
    for turn in TURNS:
        built = build(turn)
        files[f"{turn.name}.wav"] = wav_bytes(built.pcm, RATE)
        entries.append(label(turn, built))
    files["labels.json"] = labels_json(entries).encode()
    files["README.md"] = readme(entries).encode()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    args = parser.parse_args()
    if not ALLISON_DIR.is_dir():
        raise SystemExit(f"{ALLISON_DIR} missing (Debian: apt-get install {ALLISON_PACKAGE})")
    names = [t.name for t in TURNS]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate file names in TURNS")
    return write_or_check(outputs(), OUT_DIR, args.check)


def write_or_check(files: dict[str, bytes], out_dir: Path, check: bool) -> int:
    """Write ``files`` into ``out_dir``, removing the WAVs no longer made; with ``check``, only
    report what differs (1 if anything does). scripts/make-russian-turns.py uses it too."""
    stale = (
        sorted(p.name for p in out_dir.glob("*.wav") if p.name not in files)
        if out_dir.is_dir()
        else []
    )
    if check:
        differ = 0
        for name, data in files.items():
            path = out_dir / name
            same = path.is_file() and path.read_bytes() == data
            differ += not same
            if not same:
                print(f"DIFFERS {name}")
        for name in stale:
            print(f"STALE   {name} (not made by this script)")
        total = sum(len(d) for d in files.values())
        print(
            f"{len(files)} files checked ({total / 1e6:.2f} MB), {differ} differ, "
            f"{len(stale)} stale"
        )
        return 1 if differ or stale else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (out_dir / name).unlink()
        print(f"removed {name}")
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    total = sum(len(d) for d in files.values())
    print(f"wrote {len(files)} files to {out_dir.relative_to(REPO)} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
