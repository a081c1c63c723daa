"""RHVoice TTS (Russian), driven in-process through its C API, streamed sentence by sentence.

``scripts/fetch-rhvoice.py`` unpacks Debian's pinned RHVoice libraries and Russian data into
``.state/rhvoice/root`` and keeps only the LGPL voices (``LGPL_VOICES``); the other Russian
voices are licensed for non-commercial use only and are never installed. The libraries are
loaded from there with ctypes (nothing goes into the system's library path).

An RHVoice engine is not thread safe, so every call into it runs on the one worker thread this
engine owns, which also keeps concurrent calls' sentences interleaved instead of fighting for
the cores. Synthesis streams like Piper's: sentence n+1 is synthesized while sentence n plays.
Unlike Piper, RHVoice hands its audio out in pieces while it synthesizes, and stops when told
to: a barge-in stops the sentence in progress too, not only the ones queued.

``python -m voicebot.speech.tts.rhvoice --voice Aleksandr --rate 8000 -o out.wav "текст"``
writes a WAV (test callers' utterances).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import hashlib
import json
import logging
import sys
import tempfile
import threading
import time
import wave
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from ..workers import Worker, worker_status
from .base import TtsEngine, split_sentences, synthesize_ahead

__all__ = ["LGPL_VOICES", "RhvoiceTts", "check_voice", "read_manifest", "synthesize_to_wav"]

log = logging.getLogger(__name__)

# The Russian voices whose data is LGPL-2.1+ (Debian's copyright file of rhvoice-russian);
# every other one is CC BY-NC(-ND) or CC BY-SA and is deleted by the fetch script.
LGPL_VOICES = ("Aleksandr", "Anna", "Elena", "Irina")
DEFAULT_VOICE = "Irina"
DEFAULT_ROOT = Path(".state/rhvoice/root")
# Written last by scripts/fetch-rhvoice.py: its presence means the install is complete.
MANIFEST_NAME = "voicebot-rhvoice.json"
FETCH_HINT = "run .venv/bin/python scripts/fetch-rhvoice.py (or make with VOICEBOT_LANGUAGES=en,ru)"
# Load order matters: each library finds the one before it already loaded by its soname.
LIBRARIES = ("libsonic.so.0", "libRHVoice_core.so.7", "libRHVoice.so.5")
DATA_DIR = Path("usr/share/RHVoice")
# voicebot/speech/tts/rhvoice.py -> the repository (in an editable install / checkout).
_REPO = Path(__file__).resolve().parents[3]

# "min" is RHVoice's 16 kHz mode: twice the telephone band, and the fastest to first audio.
# RHVoice reads this file once, when the engine is created.
_CONFIG = "quality=min\npunctuation_mode=none\n"
# RHVoice ends every sentence with ~200 ms of silence: a pause between sentences as Piper's
# 0.2 s, but after the last one it only delays the end of the prompt. Cut it to this much.
_TAIL_KEPT_S = 0.06
_SILENCE_RMS = 100.0
_WARM_UP_TEXT = "Да."


def check_voice(name: str) -> str:
    """The voice's canonical name ("irina" -> "Irina"), or a ``ModelError`` naming the
    allowed ones: only the LGPL voices may be used."""
    for voice in LGPL_VOICES:
        if name.strip().lower() == voice.lower():
            return voice
    raise ModelError(
        f"RHVoice voice {name!r} is not allowed: use one of {', '.join(LGPL_VOICES)} "
        f"(the LGPL voices; the other Russian voices are licensed for non-commercial use only)"
    )


def resolve_root(root: str | Path = DEFAULT_ROOT) -> Path:
    """``root`` as given; a relative one that does not exist falls back to the same path under
    the repository (a bot started from another directory)."""
    path = Path(root).expanduser()
    if not path.is_absolute() and not path.exists() and (_REPO / path).exists():
        return _REPO / path
    return path


def read_manifest(root: Path) -> dict[str, Any]:
    """What the fetch script installed in ``root`` (packages, versions, sha256, voices), or a
    ``ModelError`` saying how to install it."""
    path = root / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"RHVoice is not installed in {root} (no {MANIFEST_NAME}): {FETCH_HINT}"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"RHVoice install in {root} is unreadable ({exc}): {FETCH_HINT}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("voices"), list):
        raise ModelError(f"{path} is not a voicebot RHVoice manifest: {FETCH_HINT}")
    return manifest


def library_paths(root: Path) -> list[Path]:
    """The shared libraries to load, in order, or a ``ModelError`` naming the first missing."""
    found: list[Path] = []
    for name in LIBRARIES:
        candidates = sorted(root.glob(f"usr/lib/*/{name}"))
        if not candidates:
            raise ModelError(
                f"RHVoice library {name} is missing under {root}/usr/lib: {FETCH_HINT}"
            )
        found.append(candidates[0])
    return found


def trim_trailing_silence(audio: np.ndarray, rate: int, keep_s: float = _TAIL_KEPT_S) -> np.ndarray:
    """``audio`` up to its last 10 ms block louder than ``_SILENCE_RMS``, plus ``keep_s``."""
    block = max(1, rate // 100)
    count = len(audio) // block
    if count == 0:
        return audio
    squares = audio[: count * block].astype(np.float64).reshape(count, block) ** 2
    loud = np.flatnonzero(np.sqrt(squares.mean(axis=1)) > _SILENCE_RMS)
    if loud.size == 0:
        return audio
    return audio[: min(len(audio), (int(loud[-1]) + 1) * block + int(keep_s * rate))]


# -- the C API (RHVoice.h, 1.8) -----------------------------------------------------------------

_SetSampleRate = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_PlaySpeech = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_uint, ctypes.c_void_p
)


class _Callbacks(ctypes.Structure):
    _fields_ = [
        ("set_sample_rate", _SetSampleRate),
        ("play_speech", _PlaySpeech),
        # Optional ones, NULL: marks, word and sentence boundaries, audio files, done.
        *[
            (name, ctypes.c_void_p)
            for name in (
                "process_mark", "word_starts", "word_ends", "sentence_starts",
                "sentence_ends", "play_audio", "done",
            )
        ],
    ]  # fmt: skip


class _InitParams(ctypes.Structure):
    _fields_ = [
        ("data_path", ctypes.c_char_p),
        ("config_path", ctypes.c_char_p),
        ("resource_paths", ctypes.POINTER(ctypes.c_char_p)),
        ("callbacks", _Callbacks),
        ("options", ctypes.c_uint),
    ]


class _SynthParams(ctypes.Structure):
    _fields_ = [
        ("voice_profile", ctypes.c_char_p),
        ("absolute_rate", ctypes.c_double),
        ("absolute_pitch", ctypes.c_double),
        ("absolute_volume", ctypes.c_double),
        ("relative_rate", ctypes.c_double),
        ("relative_pitch", ctypes.c_double),
        ("relative_volume", ctypes.c_double),
        ("punctuation_mode", ctypes.c_int),
        ("punctuation_list", ctypes.c_char_p),
        ("capitals_mode", ctypes.c_int),
        ("flags", ctypes.c_int),
    ]


_MESSAGE_TEXT = 0  # RHVoice_message_text: plain text, so "<" in a prompt is never SSML


def _load_api(paths: Sequence[Path]) -> ctypes.CDLL:
    api: ctypes.CDLL | None = None
    for path in paths:
        # RTLD_GLOBAL: the next library's dependency on this soname is satisfied by it.
        api = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    assert api is not None
    api.RHVoice_get_version.restype = ctypes.c_char_p
    api.RHVoice_get_version.argtypes = []
    api.RHVoice_new_tts_engine.restype = ctypes.c_void_p
    api.RHVoice_new_tts_engine.argtypes = [ctypes.POINTER(_InitParams)]
    api.RHVoice_delete_tts_engine.restype = None
    api.RHVoice_delete_tts_engine.argtypes = [ctypes.c_void_p]
    api.RHVoice_get_number_of_voice_profiles.restype = ctypes.c_uint
    api.RHVoice_get_number_of_voice_profiles.argtypes = [ctypes.c_void_p]
    api.RHVoice_get_voice_profiles.restype = ctypes.POINTER(ctypes.c_char_p)
    api.RHVoice_get_voice_profiles.argtypes = [ctypes.c_void_p]
    api.RHVoice_new_message.restype = ctypes.c_void_p
    api.RHVoice_new_message.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_int,
        ctypes.POINTER(_SynthParams), ctypes.c_void_p,
    ]  # fmt: skip
    api.RHVoice_speak.restype = ctypes.c_int
    api.RHVoice_speak.argtypes = [ctypes.c_void_p]
    api.RHVoice_delete_message.restype = None
    api.RHVoice_delete_message.argtypes = [ctypes.c_void_p]
    return api


class _Native:
    """One RHVoice engine. Every method runs on the owning ``RhvoiceTts``'s worker thread."""

    def __init__(self, root: Path) -> None:
        self._api = _load_api(library_paths(root))
        self.version = (self._api.RHVoice_get_version() or b"?").decode()
        self.rate = 0
        self._chunks: list[np.ndarray] = []
        self._should_stop: Callable[[], bool] = lambda: False
        self._stopped = False  # the message was cut short by _should_stop
        # Kept as attributes: the C side holds these pointers for the engine's lifetime.
        self._on_rate = _SetSampleRate(self._set_sample_rate)
        self._on_speech = _PlaySpeech(self._play_speech)
        with tempfile.TemporaryDirectory(prefix="voicebot-rhvoice-") as config_dir:
            Path(config_dir, "RHVoice.conf").write_text(_CONFIG, encoding="utf-8")
            params = _InitParams(
                data_path=str(root / DATA_DIR).encode(),
                config_path=config_dir.encode(),
                resource_paths=None,
                callbacks=_Callbacks(set_sample_rate=self._on_rate, play_speech=self._on_speech),
                options=0,  # voices load on first use: only the one we speak with
            )
            self._engine: int | None = self._api.RHVoice_new_tts_engine(ctypes.byref(params))
        if not self._engine:
            raise ModelError(f"RHVoice could not start with the data in {root / DATA_DIR}")

    def voice_profiles(self) -> list[str]:
        count = self._api.RHVoice_get_number_of_voice_profiles(self._engine)
        names = self._api.RHVoice_get_voice_profiles(self._engine)
        return [(names[i] or b"").decode() for i in range(count)]

    def speak(self, text: str, voice: str, should_stop: Callable[[], bool]) -> np.ndarray | None:
        """The text's audio, or None when ``should_stop`` said stop while RHVoice was still
        handing audio out (it then stops synthesizing)."""
        data = text.replace("\0", " ").encode()
        params = _SynthParams(
            voice_profile=voice.encode(),
            relative_rate=1.0, relative_pitch=1.0, relative_volume=1.0,
        )  # fmt: skip
        self._chunks, self._should_stop, self._stopped = [], should_stop, False
        message = self._api.RHVoice_new_message(
            self._engine, data, len(data), _MESSAGE_TEXT, ctypes.byref(params), None
        )
        if not message:
            raise ModelError(f"RHVoice refused a message for voice {voice}")
        try:
            finished = self._api.RHVoice_speak(message)
        finally:
            self._api.RHVoice_delete_message(message)
            chunks, self._chunks = self._chunks, []
            self._should_stop = lambda: False
        if self._stopped:
            return None
        if not finished:
            raise ModelError(f"RHVoice failed to synthesize a sentence with voice {voice}")
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    def delete(self) -> None:
        engine, self._engine = self._engine, None
        if engine:
            self._api.RHVoice_delete_tts_engine(engine)

    # Called by RHVoice from inside RHVoice_speak, on the same thread. An exception must not
    # cross into C: ctypes would print it and carry on with an undefined return value.

    def _set_sample_rate(self, rate: int, _user_data: int | None) -> int:
        self.rate = int(rate)
        return 1

    def _play_speech(self, samples: Any, count: int, _user_data: int | None) -> int:
        try:
            if self._should_stop():
                self._stopped = True
                return 0  # RHVoice stops synthesizing this message
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
            return 1
        except Exception:  # speak() reports it as a failed synthesis
            return 0


class RhvoiceTts(TtsEngine):
    """RHVoice with one of the LGPL Russian voices; the same interface as ``PiperTts``."""

    name = "rhvoice"

    def __init__(self, root: str | Path = DEFAULT_ROOT, voice: str = DEFAULT_VOICE) -> None:
        self.voice = check_voice(voice)
        self._root = resolve_root(root)
        self._native: _Native | None = None
        self._executor: Worker | None = None
        self._rate = 0
        self._fingerprint = ""
        self._closing = threading.Event()
        self.version = ""
        # Sentences run to their end, and sentences stopped part-way (barge-in); tests use them.
        self.sentences_synthesized = 0
        self.sentences_stopped = 0

    @property
    def root(self) -> Path:
        return self._root

    @property
    def sample_rate(self) -> int:
        if not self._rate:
            raise RuntimeError("RhvoiceTts.load() must be awaited before sample_rate is known")
        return self._rate

    @property
    def cache_fingerprint(self) -> str:
        """Exactly which packages, voice and settings produce this engine's audio (for
        ``CachedTts``); empty until ``load``."""
        return self._fingerprint

    async def load(self) -> None:
        if self._native is not None:
            return
        self._closing.clear()
        self._executor = Worker(1, "rhvoice")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            native, manifest, manifest_sha256 = await loop.run_in_executor(
                self._executor, self._open
            )
        except ModelError:
            await self.close()
            raise
        except Exception as exc:
            await self.close()
            raise ModelError(f"cannot load RHVoice from {self._root}: {exc}") from exc
        self._native = native
        self._rate = native.rate
        self.version = native.version
        self._fingerprint = _fingerprint(self._root, manifest_sha256, self.voice, self.version)
        log.info(
            "rhvoice %s voice %s loaded from %s (%d Hz; %s) in %.0f ms",
            self.version, self.voice, self._root, self._rate,
            _packages(manifest), (time.perf_counter() - started) * 1000,
        )  # fmt: skip

    def _open(self) -> tuple[_Native, dict[str, Any], str]:
        # Runs in the worker thread: the engine is created and used on this thread only.
        manifest = read_manifest(self._root)
        if self.voice not in manifest["voices"]:
            raise ModelError(
                f"RHVoice voice {self.voice} is not installed in {self._root} "
                f"(it has {', '.join(map(str, manifest['voices'])) or 'none'}): {FETCH_HINT}"
            )
        native = _Native(self._root)
        try:
            profiles = native.voice_profiles()
            if self.voice not in profiles:
                raise ModelError(
                    f"RHVoice in {self._root} has no voice {self.voice} "
                    f"(found: {', '.join(profiles) or 'none'}): {FETCH_HINT}"
                )
            # The first message loads the voice's data (~0.3 s): not the first caller's wait.
            audio = native.speak(_WARM_UP_TEXT, self.voice, lambda: False)
            if audio is None or not len(audio) or not native.rate:
                raise ModelError(f"RHVoice voice {self.voice} produced no audio")
        except BaseException:
            native.delete()
            raise
        manifest_sha256 = hashlib.sha256((self._root / MANIFEST_NAME).read_bytes()).hexdigest()
        return native, manifest, manifest_sha256

    def status(self) -> dict[str, Any]:
        return worker_status(self._executor, self._native is not None)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        native, self._native = self._native, None
        self._fingerprint = ""
        if executor is None:
            return
        # The sentence in progress stops at its next piece of audio; queued ones return at
        # once; the engine is deleted after them, on its own thread, never under their feet.
        self._closing.set()
        deleted = executor.submit(native.delete) if native is not None else None
        executor.shutdown(wait=False)
        if deleted is not None:
            await asyncio.wrap_future(deleted)

    async def stream(self, text: str) -> AsyncGenerator[np.ndarray, None]:
        if self._native is None or self._executor is None:
            raise RuntimeError("RhvoiceTts is not loaded (or already closed)")
        stopped = threading.Event()
        chunks = synthesize_ahead(
            split_sentences(text),
            lambda sentence, last: self._synthesize(sentence, last, stopped),
            self._executor,
        )
        try:
            async with aclosing(chunks):
                async for audio in chunks:
                    yield audio
        finally:
            # Barge-in or early close: the sentence in the worker thread stops at its next
            # piece of audio, and the ones not started never run.
            stopped.set()

    def _synthesize(self, sentence: str, last: bool, stopped: threading.Event) -> np.ndarray | None:
        # Runs in the worker thread.
        native = self._native
        if native is None or stopped.is_set() or self._closing.is_set():
            return None
        started = time.perf_counter()
        audio = native.speak(
            sentence, self.voice, lambda: stopped.is_set() or self._closing.is_set()
        )
        if audio is None:
            self.sentences_stopped += 1
            return None
        if native.rate != self._rate:
            raise ModelError(f"RHVoice changed its sample rate to {native.rate} Hz mid-call")
        self.sentences_synthesized += 1
        log.debug("rhvoice: %d ms for %d characters", (time.perf_counter() - started) * 1000,
                  len(sentence))  # fmt: skip
        return trim_trailing_silence(audio, self._rate) if last else audio


def _packages(manifest: dict[str, Any]) -> str:
    packages = manifest.get("packages") or []
    return ", ".join(f"{p.get('name')} {p.get('version')}" for p in packages if isinstance(p, dict))


def _fingerprint(root: Path, manifest_sha256: str, voice: str, version: str) -> str:
    """The installed packages (the manifest, hashed), the library's own version, the voice
    and our synthesis settings: if any of them changes, cached audio no longer matches."""
    return json.dumps(
        {
            "root": str(root.resolve()),
            "manifest_sha256": manifest_sha256,
            "rhvoice": version,
            "voice": voice,
            "config": _CONFIG,
            "tail_kept_s": _TAIL_KEPT_S,
        },
        sort_keys=True,
    )


# -- test callers' audio ------------------------------------------------------------------------


async def synthesize_to_wav(
    text: str,
    out: str | Path,
    voice: str = "Aleksandr",
    rate: int | None = None,
    root: str | Path = DEFAULT_ROOT,
) -> float:
    """Speak ``text`` with ``voice`` into a mono 16-bit WAV at ``rate`` (the engine's own,
    16 kHz, when None); returns its length in seconds."""
    tts = RhvoiceTts(root, voice)
    await tts.load()
    try:
        audio = await tts.synthesize(text)
        if rate and rate != tts.sample_rate:
            import soxr  # only here: the bot itself resamples elsewhere

            audio = np.clip(np.round(soxr.resample(audio, tts.sample_rate, rate)), -32768, 32767)
            audio = audio.astype(np.int16)
        out_rate = rate or tts.sample_rate
    finally:
        await tts.close()
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(out_rate)
        wav.writeframes(audio.astype("<i2").tobytes())
    return len(audio) / out_rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m voicebot.speech.tts.rhvoice",
        description="Speak Russian text into a WAV file with an RHVoice LGPL voice.",
    )
    parser.add_argument("text", nargs="+", help="what to say (words are joined by spaces)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="the WAV to write")
    parser.add_argument("--voice", default="Aleksandr", help=f"one of {', '.join(LGPL_VOICES)}")
    parser.add_argument("--rate", type=int, default=0, help="sample rate (default: 16000)")
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="where RHVoice is installed")
    args = parser.parse_args(argv)
    if args.rate < 0:
        parser.error("--rate must be positive")
    try:
        seconds = asyncio.run(
            synthesize_to_wav(" ".join(args.text), args.output, args.voice, args.rate, args.root)
        )
    except (ModelError, OSError) as exc:
        print(f"rhvoice: error: {exc}", file=sys.stderr)
        return 1
    print(f"rhvoice: wrote {args.output} ({seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
