#!/usr/bin/env python3
"""Regenerate the caller audio fixtures in tests/fixtures/audio/ (8 kHz mono 16-bit WAV).

.venv/bin/python scripts/make-caller-audio.py [--check]

Real human speech where it exists: Allison Smith's Asterisk prompts (Debian package
asterisk-core-sounds-en-wav, /usr/share/asterisk/sounds/en_US_f_Allison). Words she never recorded
("balance", "operator", "yes", ...) are synthesized with espeak-ng, a voice nothing like the
bot's. whisper tiny.en mishears several espeak words ("balance" -> "Madeline", "reception" ->
"with action"), so each such word uses the espeak voice/phrase that whisper reliably gets,
and the two espeak could not do ("reception", "new delivery") are Piper's bundled voice with
its pitch raised by sox (a different-sounding speaker from the bot's).

Every file is trimmed to its speech plus a short margin and peak-normalized; espeak's
22.05 kHz output is resampled to 8 kHz with soxr. The list below is the single source of
truth: tests/fixtures/audio/README.md documents the same files, and tests/unit/test_prompts.py
checks that whisper hears each file's text. ``--check`` only reports files that differ from
what this script would write (exit 1 if any), without writing.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from voicebot.capture.wav import wav_bytes
from voicebot.tools.sounds import ALLISON_DIR, ALLISON_PACKAGE, espeak_wav

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "tests" / "fixtures" / "audio"
SOUNDS = ALLISON_DIR
RATE = 8000
# Silence kept before and after the speech, and between joined words (a caller reading out
# digits pauses briefly; well under the bot's 600 ms end-of-turn silence).
MARGIN_S = 0.1
WORD_GAP_S = 0.25
# Speech starts/ends where the 10 ms RMS first/last exceeds this (about -44 dBFS).
SPEECH_RMS = 200.0
PEAK = 0.7 * 32767
ESPEAK_SPEED = 140  # words per minute: a clear, unhurried caller
PIPER_PITCH_CENTS = 300


@dataclass(frozen=True)
class Fixture:
    name: str  # file name without .wav
    text: str  # what the caller says (what whisper must hear)
    allison: tuple[str, ...] = ()  # Allison's recordings to join, relative to SOUNDS
    espeak: str | None = None  # or: espeak-ng voice (the text is ``text``)
    piper: bool = False  # or: Piper's bundled voice, pitch raised
    rhvoice: str | None = None  # or: an RHVoice voice (never Irina, the bot's Russian voice)
    # Russian: each of these is said on its own and joined with ``gap_s`` of silence (digits
    # read out one by one with pauses); empty: ``text`` in one go.
    words: tuple[str, ...] = ()
    gap_s: float = WORD_GAP_S

    @property
    def source(self) -> str:
        if self.allison:
            return "Allison (asterisk-core-sounds-en): " + " + ".join(
                f"{p}.wav" for p in self.allison
            )
        if self.piper:
            return f"Piper en_US-joe-medium, then sox pitch +{PIPER_PITCH_CENTS} cents"
        if self.rhvoice:
            return f"RHVoice {self.rhvoice} (rhvoice-russian 1.8.0, LGPL-2.1+)"
        return f"espeak-ng -v {self.espeak} -s {ESPEAK_SPEED}"


FIXTURES: tuple[Fixture, ...] = (
    # Demo Bank (prompts/bank.yaml)
    Fixture("balance", "my balance", espeak="en-gb"),
    Fixture("operator", "operator", espeak="en-gb"),
    Fixture("digits-4217", "4 2 1 7", allison=("digits/4", "digits/2", "digits/1", "digits/7")),
    Fixture("yes", "yes", espeak="en-us"),
    Fixture("no", "no", allison=("vm-no",)),
    # Sunny Clinic (prompts/clinic.yaml)
    Fixture("appointment", "an appointment", espeak="en-us+m3"),
    Fixture("cancel", "cancel", espeak="en-us"),
    Fixture("hours", "hours", allison=("hours",)),
    Fixture("reception", "reception", piper=True),
    Fixture("monday", "Monday", allison=("digits/day-1",)),
    Fixture("tomorrow", "tomorrow", allison=("digits/tomorrow",)),
    Fixture("menu", "main menu", espeak="en-gb"),
    Fixture("goodbye", "goodbye", allison=("goodbye",)),
    # Voicebot demo (prompts/demo.yaml): none of the menu's phrases, understood by meaning
    Fixture("when-open", "what time do you open tomorrow", espeak="en-gb"),
    # Parcel Express (prompts/delivery.yaml)
    Fixture("tracking", "tracking", espeak="en-us"),
    Fixture("new-delivery", "new delivery", piper=True),
    # Russian (prompts/ru/bank.yaml, prompts/ru/demo.yaml), in ru/: RHVoice's male voice, the
    # bot speaking with its female Irina.
    Fixture("ru/balance", "баланс", rhvoice="Aleksandr"),
    Fixture("ru/operator", "оператора, пожалуйста", rhvoice="Aleksandr"),
    Fixture(
        "ru/digits-4217-paused",
        "четыре два один семь",
        rhvoice="Aleksandr",
        words=("четыре", "два", "один", "семь"),
        gap_s=0.8,
    ),
    Fixture("ru/yes", "да, конечно", rhvoice="Aleksandr"),
    Fixture("ru/hours", "часы работы", rhvoice="Aleksandr"),
    Fixture("ru/goodbye", "до свидания", rhvoice="Aleksandr"),
)


def read_wav(data: bytes | Path) -> tuple[np.ndarray, int]:
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with wave.open(source, "rb") as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"{data if isinstance(data, Path) else 'espeak'}: not 16-bit PCM")
        raw = w.readframes(w.getnframes())
        pcm = np.frombuffer(raw, dtype="<i2").astype(np.int16)
        if w.getnchannels() > 1:
            pcm = pcm.reshape(-1, w.getnchannels()).mean(axis=1).astype(np.int16)
        return pcm, w.getframerate()


def to_8k(pcm: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE:
        return pcm
    out = soxr.resample(pcm.astype(np.float32), rate, RATE, quality="VHQ")
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def trim(pcm: np.ndarray) -> np.ndarray:
    """Cut leading/trailing silence, keeping MARGIN_S of it on each side."""
    frame = RATE // 100
    count = pcm.size // frame
    rms = np.sqrt(np.mean(pcm[: count * frame].reshape(count, frame).astype(np.float64) ** 2, 1))
    loud = np.flatnonzero(rms > SPEECH_RMS)
    if loud.size == 0:
        raise SystemExit("no speech found in a source recording")
    margin = int(MARGIN_S * RATE)
    start = max(int(loud[0]) * frame - margin, 0)
    end = min((int(loud[-1]) + 1) * frame + margin, pcm.size)
    return pcm[start:end]


def espeak(text: str, voice: str) -> np.ndarray:
    pcm, rate = read_wav(espeak_wav(text, voice, ESPEAK_SPEED))
    return to_8k(pcm, rate)


def piper(text: str) -> np.ndarray:
    from piper import PiperVoice, SynthesisConfig  # the bot's TTS and its bundled voice

    sys.path.insert(0, str(REPO))
    from voicebot.speech.discovery import bundled_piper_voice

    if shutil.which("sox") is None:
        raise SystemExit("sox not found (Debian: apt-get install sox)")
    voice = PiperVoice.load(str(bundled_piper_voice()))
    # Piper's noise is random on every run; without it the output is the same every time.
    no_noise = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    pcm = np.concatenate(
        [chunk.audio_int16_array for chunk in voice.synthesize(text, syn_config=no_noise)]
    )
    rate = int(voice.config.sample_rate)
    raw = ["-t", "raw", "-r", str(rate), "-e", "signed", "-b", "16", "-c", "1"]
    done = subprocess.run(
        ["sox", "-D", *raw, "-", *raw, "-", "pitch", str(PIPER_PITCH_CENTS)],
        input=pcm.astype("<i2").tobytes(), capture_output=True, check=True,
    )  # fmt: skip
    return to_8k(np.frombuffer(done.stdout, dtype="<i2").astype(np.int16), rate)


def rhvoice(text: str, voice: str) -> np.ndarray:
    import asyncio
    import tempfile

    from voicebot.speech.tts.rhvoice import synthesize_to_wav

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "said.wav"
        asyncio.run(synthesize_to_wav(text, path, voice=voice))
        pcm, rate = read_wav(path)
    return to_8k(pcm, rate)


def build(fixture: Fixture) -> np.ndarray:
    if fixture.rhvoice is not None:
        voice = fixture.rhvoice
        parts = [trim(rhvoice(word, voice)) for word in fixture.words or (fixture.text,)]
    elif fixture.espeak is not None:
        parts = [trim(espeak(fixture.text, fixture.espeak))]
    elif fixture.piper:
        parts = [trim(piper(fixture.text))]
    else:
        parts = []
        for rel in fixture.allison:
            pcm, rate = read_wav(SOUNDS / f"{rel}.wav")
            parts.append(trim(to_8k(pcm, rate)))
    gap = np.zeros(int(fixture.gap_s * RATE) - 2 * int(MARGIN_S * RATE), dtype=np.int16)
    joined = parts[0]
    for part in parts[1:]:
        joined = np.concatenate([joined, gap, part])
    peak = float(np.max(np.abs(joined.astype(np.int32))))
    scaled = joined.astype(np.float64) * (PEAK / peak)
    return np.clip(np.round(scaled), -32768, 32767).astype(np.int16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    args = parser.parse_args()
    if not SOUNDS.is_dir():
        raise SystemExit(f"{SOUNDS} missing (Debian: apt-get install {ALLISON_PACKAGE})")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    differ = 0
    for fixture in FIXTURES:
        data = wav_bytes(build(fixture), RATE)
        path = OUT_DIR / f"{fixture.name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        seconds = (len(data) - 44) / 2 / RATE
        if args.check:
            same = path.is_file() and path.read_bytes() == data
            differ += not same
            print(f"{'ok     ' if same else 'DIFFERS'} {path.name:18} {fixture.text!r}")
            continue
        path.write_bytes(data)
        print(
            f"wrote {path.relative_to(REPO)} ({seconds:.2f} s): {fixture.text!r}"
            f" <- {fixture.source}"
        )
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
