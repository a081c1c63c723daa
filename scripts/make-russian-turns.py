#!/usr/bin/env python3
"""Regenerate the labelled Russian caller-turn set in tests/fixtures/turns-ru/ (8 kHz mono
16-bit WAV).

.venv/bin/python scripts/make-russian-turns.py [--check]

The endpointing benchmark (scripts/bench-endpointing.py --turns tests/fixtures/turns-ru) plays
these to the bot's Russian scripts (extensions 321, 322, 324) on real calls and measures
voice-to-voice latency and recognition, as it does with the English set in tests/fixtures/turns/.
Each file is built exactly like an English one, by scripts/make-turn-set.py's own ``assemble``
(loaded from that script): the clips are scaled to a -3 dBFS peak for the whole turn, trimmed
to their 10 ms frames over SPEECH_RMS, and joined with exact digital silence, so labels.json
knows where the speech starts, where the caller's voice ends and where the pauses are.

The callers are RHVoice's LGPL voices other than the bot's own (Aleksandr, Anna, Elena; never
Irina, the bot's voice) from the install of scripts/fetch-rhvoice.py, and espeak-ng's Russian
voices at ESPEAK_SPEED words a minute, in the phrases whisper base (ru) hears (checked by the
slow test in tests/unit/test_turn_set_ru.py; the comments below say what it did not hear).
RHVoice synthesizes at 16 kHz and espeak-ng at 22.05 kHz: both are resampled to 8 kHz with
soxr as the English set is. ``--check`` only reports what differs from what this script would
write (exit 1 if anything does), without writing.

Groups (all prefixed ``ru-``, so that a bench run with both sets never mixes them):
``ru-menu`` a menu item in a word or a short phrase; ``ru-digits`` four digits, one word at a
time with pauses of 0.3-1.0 s between them, or as two numbers with a pause between
("сорок два … семнадцать"); ``ru-yes_no`` yes/no answers; ``ru-paused`` a carrier phrase
("мне нужен", "я хотел бы узнать"), a pause of 0.5-1.0 s, then the menu item.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voicebot.capture.wav import wav_bytes  # noqa: E402
from voicebot.dialog.lang import RUSSIAN  # noqa: E402
from voicebot.errors import ModelError  # noqa: E402
from voicebot.speech.tts.rhvoice import LGPL_VOICES, RhvoiceTts, read_manifest  # noqa: E402
from voicebot.tools.sounds import espeak_wav  # noqa: E402


def load_turn_set_script() -> ModuleType:
    """scripts/make-turn-set.py as a module: its file building is this set's too."""
    path = REPO / "scripts" / "make-turn-set.py"
    spec = importlib.util.spec_from_file_location("make_turn_set", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


turnset = load_turn_set_script()

OUT_DIR = REPO / "tests" / "fixtures" / "turns-ru"
RHVOICE_ROOT = REPO / ".state" / "rhvoice" / "root"
RATE: int = turnset.RATE
LANGUAGE = "ru"
# The bot speaks Russian with Irina (voicebot.speech.tts.rhvoice.DEFAULT_VOICE): a caller in
# her voice would be the bot's own prompts played back.
BOT_VOICE = "Irina"
CALLER_VOICES = tuple(v for v in LGPL_VOICES if v != BOT_VOICE)
ESPEAK = "espeak-ng:"  # a clip's voice "espeak-ng:ru+m3" is espeak-ng's, not RHVoice's
# At espeak-ng's default 175 and the English set's 140, whisper base hears hardly a Russian
# word of it; at 120 it hears some ("баланс", "адрес", "нет").
ESPEAK_SPEED = 120

# group -> kind (what the bench and the dialog make of the answer)
GROUP_KINDS = {"ru-menu": "menu", "ru-paused": "menu", "ru-yes_no": "yes_no", "ru-digits": "digits"}

# ---- the set -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    """One utterance: ``text`` said by an RHVoice voice or, prefixed ESPEAK, espeak-ng's."""

    text: str
    voice: str

    def __post_init__(self) -> None:
        if not self.voice.startswith(ESPEAK) and self.voice not in CALLER_VOICES:
            raise ValueError(
                f"{self.text!r}: voice {self.voice!r} is not a caller's (RHVoice "
                f"{', '.join(CALLER_VOICES)}, or {ESPEAK}VOICE)"
            )

    @property
    def tag(self) -> str:
        """The voice in a file name: "aleksandr", "espeak-ru-m3"."""
        return self.voice.replace(ESPEAK, "espeak-").replace("+", "-").lower()


@dataclass(frozen=True)
class Turn:
    name: str  # file name without .wav
    group: str  # a key of GROUP_KINDS
    answer: str
    clips: tuple[Say, ...]
    gaps_s: tuple[float, ...] = ()  # silence between consecutive clips

    def __post_init__(self) -> None:
        if len(self.gaps_s) != len(self.clips) - 1:
            raise ValueError(f"{self.name}: {len(self.clips)} clips, {len(self.gaps_s)} gaps")
        if len({c.voice for c in self.clips}) != 1:
            raise ValueError(f"{self.name}: one caller, one voice")

    @property
    def kind(self) -> str:
        return GROUP_KINDS[self.group]

    @property
    def said(self) -> str:
        return " ".join(c.text for c in self.clips)

    def source(self, rhvoice_version: str) -> str:
        voice = self.clips[0].voice
        if voice.startswith(ESPEAK):
            head = f"espeak-ng -v {voice.removeprefix(ESPEAK)} -s {ESPEAK_SPEED}"
        else:
            head = f"RHVoice {rhvoice_version} {voice}"
        pauses = [g for g in self.gaps_s if g >= turnset.MIN_PAUSE_S]
        if len(set(pauses)) == 1 and len(pauses) > 1:
            head += f", {pauses[0]:g} s apart"
        elif pauses:
            head += ", " + " and ".join(f"{g:g} s" for g in pauses) + " pause"
        return head


def phrase(group: str, answer: str, slug: str, text: str, voice: str) -> Turn:
    """``text`` said in one go."""
    say = Say(text, voice)
    return Turn(f"{group}-{answer}-{slug}-{say.tag}", group, answer, (say,))


def paused(answer: str, carrier: str, rest: str, voice: str, pause_s: float, slug: str) -> Turn:
    """A carrier phrase, ``pause_s`` of silence, then ``rest`` (the menu item)."""
    clips = (Say(carrier, voice), Say(rest, voice))
    name = f"ru-paused{round(pause_s * 1000)}-{answer}-{slug}-{clips[0].tag}"
    return Turn(name, "ru-paused", answer, clips, (pause_s,))


def digits(digit_string: str, voice: str, gaps_s: tuple[float, ...]) -> Turn:
    """Each digit a word of its own ("четыре", "два" …), ``gaps_s`` apart."""
    clips = tuple(Say(RUSSIAN.speak_digits(d), voice) for d in digit_string)
    gaps = "-".join(str(round(g * 1000)) for g in gaps_s)
    name = f"ru-digits-{digit_string}-{clips[0].tag}-{gaps}"
    return Turn(name, "ru-digits", digit_string, clips, gaps_s)


def numbers(digit_string: str, voice: str, words: tuple[str, ...], gaps_s: tuple[float, ...]
            ) -> Turn:  # fmt: skip
    """The digits said as numbers ("сорок два", "семнадцать"), ``gaps_s`` apart; the dialog
    reads them as the digits (``RUSSIAN.parse_digits``, checked here)."""
    said = " ".join(words)
    if RUSSIAN.parse_digits(said) != digit_string:
        raise ValueError(f"{said!r} is not read as {digit_string}")
    clips = tuple(Say(w, voice) for w in words)
    gaps = "-".join(str(round(g * 1000)) for g in gaps_s)
    name = f"ru-digits-{digit_string}-numbers-{clips[0].tag}-{gaps}"
    return Turn(name, "ru-digits", digit_string, clips, gaps_s)


# What whisper base (ru) did not hear on every take (0-5, through G.711; of what is used it
# misheard one play, espeak-ng's "нет" as "Не" on take 3), and so is not used:
# Elena's "часы работы" ("Чи суй работа?") and "позовите оператора" ("пазавича тиратера"),
# Anna's "часы работы" ("часы" alone), "какой у вас адрес" ("Какую вас обрез?") and bare
# "оператор" ("А ты ратор." on takes 4 and 5),
# espeak-ng's "часы работы", "оператор" and "проверить баланс" in every voice tried (ru, ru+f2,
# ru+f3, ru+m3, ru+m7, ru+klatt at 110-140 words a minute).
MENU = [
    phrase("ru-menu", "hours", "chasy-raboty", "часы работы", "Aleksandr"),
    phrase("ru-menu", "hours", "rezhim-raboty", "режим работы", "Aleksandr"),
    phrase("ru-menu", "hours", "rezhim-raboty", "режим работы", "Anna"),
    phrase("ru-menu", "hours", "kogda-vy-rabotaete", "когда вы работаете", "Elena"),
    phrase("ru-menu", "balance", "balans", "баланс", "Elena"),
    phrase("ru-menu", "balance", "moy-balans", "мой баланс", "Aleksandr"),
    phrase("ru-menu", "balance", "proverit-balans", "проверить баланс", "Anna"),
    phrase("ru-menu", "balance", "balans", "баланс", "espeak-ng:ru+m3"),
    phrase("ru-menu", "operator", "operator", "оператор", "Aleksandr"),
    phrase("ru-menu", "operator", "pozovite", "позовите оператора", "Anna"),
    phrase("ru-menu", "operator", "operator", "оператор", "Elena"),
    phrase("ru-menu", "operator", "soedinite", "соедините с оператором", "Anna"),
    phrase("ru-menu", "address", "adres", "адрес", "Elena"),
    phrase("ru-menu", "address", "kakoy-u-vas-adres", "какой у вас адрес", "Aleksandr"),
    phrase("ru-menu", "address", "vash-adres", "ваш адрес", "espeak-ng:ru"),
    phrase("ru-menu", "address", "adres", "адрес", "espeak-ng:ru+m7"),
]

# Four digits one at a time: every pause of 0.3-1.0 s, even and uneven, in each voice. Not
# Anna's "семь" (heard as "Тим", "кими", "3"), nor "девяносто … семьдесят пять" (as "95"), nor
# Aleksandr's "сорок два … семнадцать" (as "42 17 42 17" on every take: a decoder loop).
DIGIT_GAPS_S = (
    (0.3, 0.3, 0.3),
    (0.5, 0.5, 0.5),
    (0.7, 0.7, 0.7),
    (1.0, 1.0, 1.0),
    (0.3, 0.8, 0.5),
    (1.0, 0.4, 0.6),
)
DIGIT_STRINGS = (
    ("4217", "Aleksandr", 0), ("3580", "Anna", 1), ("9075", "Elena", 2),
    ("1234", "Aleksandr", 3), ("6093", "Anna", 4), ("2046", "Elena", 5),
    ("7351", "Elena", 0), ("8162", "Anna", 1), ("5908", "Aleksandr", 2),
    ("0427", "Elena", 3), ("3169", "Aleksandr", 4), ("4217", "Elena", 5),
)  # fmt: skip
DIGITS = [digits(s, voice, DIGIT_GAPS_S[gaps]) for s, voice, gaps in DIGIT_STRINGS]
DIGITS += [
    numbers("4217", "Elena", ("сорок два", "семнадцать"), (0.5,)),
    numbers("3580", "Aleksandr", ("тридцать пять", "восемьдесят"), (0.7,)),
    numbers("1234", "Anna", ("двенадцать", "тридцать четыре"), (0.6,)),
    numbers("2105", "Aleksandr", ("двадцать один", "ноль", "пять"), (0.8, 0.4)),
]

# espeak-ng's "да" is heard as "С" in every voice tried, its "конечно" as "Комнифия", its "не
# надо" as "И рато"; Anna's "не надо" as "Нинада". Aleksandr's "нет спасибо" has no comma: at
# one he pauses 0.24 s, a mid-turn pause inside one utterance that the labels cannot place.
YES_NO = [
    phrase("ru-yes_no", "yes", "da", "да", "Aleksandr"),
    phrase("ru-yes_no", "yes", "da", "да", "Anna"),
    phrase("ru-yes_no", "yes", "konechno", "конечно", "Anna"),
    phrase("ru-yes_no", "yes", "aga", "ага", "Elena"),
    phrase("ru-yes_no", "yes", "da-verno", "да, верно", "Elena"),
    phrase("ru-yes_no", "no", "net", "нет", "Elena"),
    phrase("ru-yes_no", "no", "net", "нет", "espeak-ng:ru"),
    phrase("ru-yes_no", "no", "ne-nado", "не надо", "Aleksandr"),
    phrase("ru-yes_no", "no", "net-spasibo", "нет спасибо", "Aleksandr"),
    phrase("ru-yes_no", "no", "net-spasibo", "нет, спасибо", "Anna"),
]

# Each pause twice, each intent twice; the women say "я хотела бы узнать". Not their "мне
# нужен": whisper hears Anna's as "не нужен" on every take, Elena's on some; nor Elena's
# "адрес" after the carrier ("обрез" on take 3).
MENU_PAUSED = [
    paused("operator", "мне нужен", "оператор", "Aleksandr", 0.5, "nuzhen"),
    paused("balance", "я хотела бы узнать", "баланс", "Elena", 0.5, "uznat"),
    paused("balance", "я хотела бы узнать", "мой баланс", "Anna", 0.7, "uznat"),
    paused("hours", "я хотел бы узнать", "режим работы", "Aleksandr", 0.7, "uznat"),
    paused("hours", "я хотела бы узнать", "режим работы", "Anna", 0.8, "uznat"),
    paused("operator", "мне нужен", "оператор", "Aleksandr", 0.8, "nuzhen"),
    paused("address", "я хотела бы узнать", "где вы находитесь", "Elena", 1.0, "uznat"),
    paused("address", "я хотел бы узнать", "ваш адрес", "Aleksandr", 1.0, "uznat"),
]

TURNS: tuple[Turn, ...] = (*MENU, *DIGITS, *YES_NO, *MENU_PAUSED)

# ---- sources -------------------------------------------------------------------------------


async def rhvoice_audio(wanted: set[Say]) -> dict[Say, np.ndarray]:
    """Every RHVoice utterance of ``wanted``, at RATE; one engine per voice."""
    audio: dict[Say, np.ndarray] = {}
    for voice in sorted({say.voice for say in wanted}):
        tts = RhvoiceTts(RHVOICE_ROOT, voice)
        try:
            await tts.load()
            for say in sorted((s for s in wanted if s.voice == voice), key=lambda s: s.text):
                pcm = await tts.synthesize(say.text)
                audio[say] = turnset.to_8k(pcm.astype(np.float64), tts.sample_rate)
        finally:
            await tts.close()
    return audio


def espeak_audio(say: Say) -> np.ndarray:
    wav = espeak_wav(say.text, say.voice.removeprefix(ESPEAK), ESPEAK_SPEED)
    return turnset.to_8k(*turnset.read_wav(wav))


def clip_audio(turns: tuple[Turn, ...]) -> dict[Say, np.ndarray]:
    """The audio of every utterance the turns say, at RATE."""
    says = {say for turn in turns for say in turn.clips}
    audio = asyncio.run(rhvoice_audio({s for s in says if not s.voice.startswith(ESPEAK)}))
    audio.update({s: espeak_audio(s) for s in says if s.voice.startswith(ESPEAK)})
    return audio


# ---- labels --------------------------------------------------------------------------------


def label(turn: Turn, built: Any, rhvoice_version: str) -> dict[str, object]:
    """The English set's label (tests/fixtures/turns/README.md) and the turn's language."""
    return {
        "file": f"{turn.name}.wav",
        "group": turn.group,
        "kind": turn.kind,
        "language": LANGUAGE,
        "text": turn.said,
        "answer": turn.answer,
        "digits_length": len(turn.answer) if turn.kind == "digits" else None,
        "duration_s": round(built.pcm.size / RATE, 3),
        "speech_start_s": round(built.speech_start_s, 3),
        "voice_end_s": round(built.voice_end_s, 3),
        "pauses_s": [[round(a, 3), round(b, 3)] for a, b in built.pauses_s],
        "source": turn.source(rhvoice_version),
        "background_db": None,
        "background_start_s": None,
        "background_end_s": None,
        "background_text": None,
    }


README_HEAD = """\
# Labelled Russian caller turns for the endpointing benchmark

Written by `scripts/make-russian-turns.py`, this README included (edit the script, not the
files):

```sh
.venv/bin/python scripts/make-russian-turns.py          # rewrite the set
.venv/bin/python scripts/make-russian-turns.py --check  # only compare (exit 1 if anything differs)
```

What a test caller says to the bot's Russian bench scripts, one turn per file: 8 kHz mono
16-bit WAV, peak -3 dBFS. `scripts/bench-endpointing.py --turns tests/fixtures/turns-ru` plays
them on real calls: the menu turns (`ru-menu`, `ru-paused`) to extension 321, yes/no
(`ru-yes_no`) to 322, four digits (`ru-digits`) to 324 (`tests/fixtures/turns/scripts/`), and
measures voice-to-voice latency from `voice_end_s` and whether the bot took the answer.

## How the files are made

Exactly as the English set's (`tests/fixtures/turns/README.md`; the same code,
`scripts/make-turn-set.py`'s `assemble`): each turn is a list of utterances of one voice,
scaled together so the loudest sample is at -3 dBFS, each trimmed to its 10 ms frames from
the first to the last above -44 dBFS (3 ms fades where a cut goes through sound), joined by
exact digital silence, with 0.1 s of silence before and after. So `speech_start_s` is 0.1,
`voice_end_s` is the end of the last voiced frame, and `pauses_s` lists every silence of 0.2 s
or more between two utterances (all on the 10 ms grid).

- `ru-menu`: a menu item in a word or a short phrase ("оператор", "режим работы", "какой у
  вас адрес");
- `ru-digits`: four digits, each its own utterance ("четыре", "два", "один", "семь") with
  pauses of 0.3-1.0 s between them (even, or uneven such as 0.3, 0.8, 0.5 s), or said as
  numbers with a pause between ("сорок два" … "семнадцать": the answer is the digits the
  dialog reads from them, 4217);
- `ru-yes_no`: «да», «конечно», «ага», «да, верно»; «нет», «не надо», «нет, спасибо»;
- `ru-paused`: a carrier phrase ("мне нужен", "я хотел(а) бы узнать"), a pause of 0.5, 0.7,
  0.8 or 1.0 s, then the menu item (each pause twice, each menu intent twice).

## Voices

The callers are never the bot's voice (RHVoice Irina):

- RHVoice 1.8.0 (`rhvoice-russian`, Debian bookworm non-free, as `scripts/fetch-rhvoice.py`
  installs it into `.state/rhvoice/root`), voices **Aleksandr**, **Anna** and **Elena**,
  synthesized in-process (`voicebot.speech.tts.rhvoice`, 16 kHz), resampled to 8 kHz with
  soxr;
- espeak-ng's Russian voices (`espeak-ng -v ru`, `ru+m3`, `ru+m7`) at 120 words a minute,
  22.05 kHz resampled to 8 kHz with soxr.

Only phrases and voices that whisper base (ru) hears right on the file and on takes 1 and 2
(`voicebot/tools/takes.py`: the takes the bench plays by default), after a G.711 μ-law round
trip and given the phrases the bot gives it, are in the set; on takes 3-5 it misheard one
play of the 150 (espeak-ng's «нет» as «Не»). The script's comments say what was left out.
`tests/unit/test_turn_set_ru.py` checks the labels against the audio and the bench scripts,
and (slow) what whisper base hears. RHVoice and espeak-ng are deterministic: the output is the
same on every run with the same versions.

## labels.json

As the English set's (`tests/fixtures/turns/README.md`), one object per file, and
`"language": "ru"` (the bench plays the turn to that language's script). `group` is one of
`ru-menu`, `ru-digits`, `ru-yes_no`, `ru-paused`; `kind` `menu`, `digits` or `yes_no`;
`answer` the intent (`hours`, `balance`, `operator`, `address`), the digit string, or
`"yes"`/`"no"` (what the dialog's `yes_no` slot holds); the background fields are `null`.

## Licences

The RHVoice voices Aleksandr, Anna and Elena (`data/voices/aleksandr`, `anna`, `elena` of
RHVoice, © Olga Yakovleva) are licensed under the **GNU LGPL 2.1 or later** (Debian's
copyright file of `rhvoice-russian`, installed with them in
`.state/rhvoice/root/usr/share/doc/rhvoice-russian/copyright`); the other Russian voices of
that package are not, and are not used. The speech synthesized with them here is offered under
the same licence. espeak-ng is GPL-3.0-or-later; the GPL does not cover the speech it outputs,
which here is part of these test fixtures.

## Files

| file | group | text | answer | voice end (s) | pauses (s) | source |
| --- | --- | --- | --- | --- | --- | --- |
"""


def readme(entries: list[dict[str, Any]]) -> str:
    rows = []
    for e in entries:
        pauses = ", ".join(f"{a:.2f}–{b:.2f}" for a, b in e["pauses_s"])
        rows.append(
            f"| {e['file']} | {e['group']} | {e['text']} | {e['answer']} | "
            f"{e['voice_end_s']:.2f} | {pauses} | {e['source']} |"
        )
    return README_HEAD + "\n".join(rows) + "\n"


def outputs() -> dict[str, bytes]:
    """Every file this script writes into OUT_DIR, by name."""
    try:
        version = str(read_manifest(RHVOICE_ROOT).get("rhvoice", "?")).split("+")[0]
    except ModelError as exc:
        raise SystemExit(str(exc)) from None
    audio = clip_audio(TURNS)
    files: dict[str, bytes] = {}
    entries = []
    for turn in TURNS:
        raw = [audio[say] for say in turn.clips]
        built = turnset.assemble(turn.name, raw, turn.gaps_s)
        files[f"{turn.name}.wav"] = wav_bytes(built.pcm, RATE)
        entries.append(label(turn, built, version))
    files["labels.json"] = turnset.labels_json(entries).encode()
    files["README.md"] = readme(entries).encode()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    args = parser.parse_args()
    names = [t.name for t in TURNS]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate file names in TURNS")
    return int(turnset.write_or_check(outputs(), OUT_DIR, args.check))


if __name__ == "__main__":
    sys.exit(main())
