"""Whisper (faster-whisper / CTranslate2) as a batch ASR engine.

Whisper has no partial results: recognizers buffer audio in ``feed`` and transcribe the whole
utterance in ``finish``. Model calls run on the engine's worker threads, ``asr.threads`` of
them (one per core), oldest first. tiny.en gains nothing from two threads inside one decode
(78 vs 81 ms here), while two decodes side by side finished a burst of 16 answers in 1.04 s
instead of 1.42 s: each of its decodes runs on one core. whisper base is about four times the
work and does gain: on the 50 Russian turns of tests/fixtures/turns-ru a turn took p50 444 /
p95 1197 ms on one core and 296 / 774 ms on two (encoder 299 -> 208 ms, forced fit 823 ->
497 ms), the words unchanged. So a large model's decode may use two cores
(``asr.decode_threads``, ``decode_threads``): one caller at a time is what a small site has,
and in a burst the decodes share the cores as before, about as fast in total.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ...config import AsrConfig
from ...dialog.match import best_match
from ...errors import ModelError
from ...logtext import caller_text
from ..discovery import resolve_whisper_model
from ..workers import Worker, worker_status
from .base import AsrEngine, Recognizer, Transcript, check_pcm

log = logging.getLogger(__name__)

# Below this RMS (about -50 dBFS) the utterance is line noise: Whisper would only hallucinate
# ("Thank you.") on it, so the model is not run at all.
_SILENCE_RMS = 100.0
# Shorter than this cannot be a word.
_MIN_AUDIO_S = 0.1
_MAX_TOKENS_BASE = 16
_MAX_TOKENS_PER_S = 8
# Whisper's encoder normally reads a fixed 30 s window (3000 feature frames), which costs about
# 400 ms here whatever the utterance length. CTranslate2 accepts a shorter window; below ~10 s
# tiny.en starts looping on one-word answers, at 10 s its output matched the 30 s window on every
# Allison recording tried while the encoder ran 4-6x faster. So: at least 10 s, utterance + margin.
_FULL_WINDOW_FRAMES = 3000
_MIN_WINDOW_FRAMES = 1000
_WINDOW_MARGIN_FRAMES = 100
# A loop at one window length rarely recurs at another: on the labelled turn set (57 turns,
# cut as a call cuts them, 1500 decodes per window) 10 s looped 34 times, 15 s 5 times (on
# other turns), 20 s never. So a loop is redone at 20 s, still cheaper than the full 30 s
# window, which also misheard more of those turns ("opening out", "all the rater").
# whisper base (Russian) keeps these windows too. A 5 s window padded with the log-mel of
# silence (what whisper is trained on) halved its encoder time on the clean Russian turn
# files, but on real calls (line noise, G.711) it looped on most digit strings and the
# retries made the turns slower (2026-12-07); padded with zeros, 5 s doubled digits
# ("35, 80, 80" for 3580).
_RETRY_WINDOW_FRAMES = 2000
# A word said 4 times in a row, or a run of 2-6 words said 3 times, is a decoder loop.
_LOOP_REPEATS = 4
_LOOP_PHRASE_REPEATS = 3
# On longer audio with pauses the short window sometimes ends the transcript at the first pause
# (seen: 15 s of prompts came back as its first sentence), so only short answers, the common
# case at an IVR, take the fast path.
_SHORT_WINDOW_MAX_S = 5.0
# When the words heard name none of the answers the state expects, each expected phrase is
# decoded by force against the audio (CTranslate2's align gives its token probabilities). On
# the labelled turn set (G.711, cut as calls cut them) the phrase actually said had a mean
# token log-probability of -0.3 to -2.4 and no token below -3.9; off-script speech, the first
# half of a paused answer ("What are you?" for "what are your ... opening hours") and noise
# had a mean of -4.7 or less and some token below -10. So the bar sits well clear of both.
_EXPECTED_MEAN_LOGPROB = -2.5
_EXPECTED_WORST_LOGPROB = -5.0
# With other voices under the caller's, the phrase said fits worse (seen: "an operator" -3.8 to
# -4.1 with a token at -6.8, "an extension" -3.1 with one at -5.5), yet every phrase of the
# other answers fits far worse (1.9 to 5.7 lower, with a token below -8). Of the turn set's
# turns that must not be taken (off-script speech, first halves of paused answers, room talk
# alone, noise, digits; three takes each), the 468 that reach the forced fit had no phrase
# clearing these looser bars; 13 of the 17 right answers the first bars miss do
# (scripts/bench-expected.py).
# The call takes no word whisper scores under 0.02 (call.parts.MIN_WORD_CONFIDENCE), and the
# score of one and the same audio moves between runs (CTranslate2's threads: "operator" over a
# room scored 0.020 to 0.026 on five replays of one capture, and one replay lost the turn). An
# answer heard at a score under this is judged by the forced fit as well.
_FAINT_ANSWER_CONFIDENCE = 0.05
_LEADING_MEAN_LOGPROB = -4.5
_LEADING_WORST_LOGPROB = -7.5
_LEADING_MARGIN = 1.0
# A model.bin this large (whisper base is 145 MB, tiny.en 76) is worth two cores a decode.
_LARGE_MODEL_BYTES = 100_000_000
_LARGE_MODEL_THREADS = 2
# The forced fit decodes every expected phrase against its own copy of the encoder's output,
# so its cost grows with the window: 16 phrases took whisper base p50 511 ms on the Russian
# turns. Cut to the utterance and 3 s after it, it took 305 ms, and chose the same phrase on
# 33 of the 34 menu and yes/no turns (the 34th: espeak's «баланс», which it now took, rightly).
# Cut at 1 s after, the scores fell apart (-0.34 to -6.84 for a clear «баланс»). tiny.en keeps
# the whole window: its bars were measured on it, and cut, it chose otherwise on 4 of 52
# English turns.
_LARGE_MODEL_FIT_CONTEXT_FRAMES = 300
# Each phrase fitted costs about as much as any other (whisper base on two cores: 1 phrase 23
# ms, 4 phrases 77, 16 phrases 283), and the phrase said is most often the one spelt most like
# what whisper misheard («Атиратор» for «оператор», "My violin" for "my balance"). So the
# phrases closest in spelling are fitted first, and the others only when none of those fits on
# its own: a phrase that does leaves every other answer's phrases far below it (above). Over
# the 230 turns of the English and Russian turn sets that reach the fit (G.711, 1-3 takes;
# 2026-12-07) this took the same phrase as fitting them all on every turn, with 2 to 6 first.
_FIRST_FITS = 3


class WhisperEngine(AsrEngine):
    name = "whisper"
    # Whisper hears one window: audio beyond it is decoded as a second pass (faster-whisper
    # seeks on), which doubles the cost and may drop words at the seam.
    max_audio_s = _FULL_WINDOW_FRAMES / 100  # 100 feature frames a second: 30 s

    def __init__(self, config: AsrConfig, language: str = "en", phrase_hint: bool = False) -> None:
        self._config = config
        self._language = language
        # Passing the expected answers as initial_prompt (hotwords does the same thing inside
        # faster-whisper) gained nothing on real recordings with tiny.en and made Whisper echo
        # the prompt verbatim on noise ("one, two, three." -> "One, two, three."), so it is
        # off unless asked for; even then a verbatim echo of the whole list is discarded.
        self._phrase_hint = phrase_hint
        self._model: Any = None
        self._executor: Worker | None = None
        self._workers = max(1, config.threads)
        self._decode_threads = 1
        self._fit_context: int | None = None

    async def load(self) -> None:
        if self._model is not None:
            return
        path = resolve_whisper_model(self._config.whisper_model)
        size = _model_bytes(path)
        self._decode_threads = decode_threads(
            self._config.decode_threads, size, os.cpu_count() or 1
        )
        self._fit_context = fit_context(size)
        self._executor = Worker(self._workers, "whisper")
        loop = asyncio.get_running_loop()
        try:
            self._model = await loop.run_in_executor(self._executor, self._load_model, str(path))
            # The first call pays for lazy allocations; pay it now, not on the first caller.
            warmup = np.zeros(self.sample_rate, dtype=np.float32)
            # ... and for the first forced decode of expected answers.
            await loop.run_in_executor(self._executor, self._transcribe, warmup, None, ("yes",))
        except ModelError:
            await self.close()
            raise
        except Exception as exc:
            await self.close()
            raise ModelError(f"cannot load Whisper model {path}: {exc}") from exc
        log.info("whisper model loaded from %s (%d decode(s) side by side, %d core(s) each)",
                 path, self._workers, self._decode_threads)  # fmt: skip

    def _load_model(self, path: str) -> Any:
        from faster_whisper import WhisperModel  # heavy import, only when used

        return WhisperModel(
            path, device="cpu", compute_type="int8", cpu_threads=self._decode_threads,
            num_workers=self._workers,
        )  # fmt: skip

    @property
    def phrase_hint(self) -> bool:
        return self._phrase_hint

    def recognizer(
        self, phrases: Sequence[str] | None = None, *, grammar: bool = False
    ) -> Recognizer:
        # Whisper cannot be restricted to a grammar; the expected phrases serve as the
        # fallback when the free decode names none of them (transcribe's ``expected``).
        if self._model is None:
            raise RuntimeError("WhisperEngine.load() must be awaited before recognizer()")
        return WhisperRecognizer(self, phrases)

    def status(self) -> dict[str, Any]:
        return worker_status(self._executor, self._model is not None)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        self._model = None
        if executor is not None:
            # A transcription already running finishes in its thread; queued ones are dropped.
            executor.shutdown(wait=False, cancel_futures=True)

    async def transcribe(
        self, audio: np.ndarray, prompt: str | None = None, expected: Sequence[str] = ()
    ) -> Transcript:
        """Transcribe one whole utterance (mono int16 at 16 kHz). When the words heard name
        none of the ``expected`` answers but one of them fits the audio itself well, that
        answer is the transcript (tiny.en hears a clear "opening hours" as "opening out")."""
        check_pcm(audio)
        if len(audio) < _MIN_AUDIO_S * self.sample_rate or _rms(audio) < _SILENCE_RMS:
            return Transcript("", is_final=True)
        if self._model is None or self._executor is None:
            raise RuntimeError("WhisperEngine is not loaded (or already closed)")
        samples = audio.astype(np.float32) / 32768.0
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        text, confidence = await loop.run_in_executor(
            self._executor, self._transcribe, samples, prompt, tuple(expected)
        )
        return Transcript(
            text,
            is_final=True,
            confidence=confidence,
            processing_s=time.perf_counter() - started,
        )

    def _transcribe(
        self, samples: np.ndarray, prompt: str | None, expected: tuple[str, ...] = ()
    ) -> tuple[str, float | None]:
        # Runs in the worker thread.
        features = self._model.feature_extractor(samples)
        heard: tuple[str, float | None] | None = None
        encoded: Any = None
        if prompt is None and len(samples) <= _SHORT_WINDOW_MAX_S * self.sample_rate:
            for window in (_MIN_WINDOW_FRAMES, _RETRY_WINDOW_FRAMES):
                if _window_for(features, window) >= _FULL_WINDOW_FRAMES:
                    break
                encoded = self._encode(features, window)
                heard = self._decode_short_window(encoded, len(samples))
                if heard is not None:
                    break
        if heard is None:
            heard = self._transcribe_full_window(samples, prompt)
            encoded = None
        if not needs_forced_fit(heard[0], heard[1], expected):
            return heard
        frames = min(features.shape[-1], _FULL_WINDOW_FRAMES - _WINDOW_MARGIN_FRAMES)
        if encoded is None:
            encoded = self._encode(features[:, :frames], _MIN_WINDOW_FRAMES)
        fits = self._fit_closest_first(encoded, frames, heard[0], expected)
        closest = choose_expected(fits)
        if closest is None or not fit_agrees(heard[0], closest, expected):
            return heard
        phrase, mean_logprob = closest.phrase, closest.mean
        # What the caller said (the expected phrase too: it may be their account number) is
        # shown at DEBUG only; this engine serves every call and knows no call's settings.
        log.info("whisper heard %s; taking the expected %s, which fits the audio (%.2f)",
                 caller_text(heard[0], log), caller_text(phrase, log), mean_logprob)  # fmt: skip
        return phrase, expected_confidence(fits, closest)

    def _tokenizer(self) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        model = self._model
        return Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
            language=self._language if model.model.is_multilingual else None,
        )  # fmt: skip

    def _encode(self, features: np.ndarray, min_window: int) -> Any:
        """The encoder's output for ``features`` zero-padded to a window of at least
        ``min_window`` feature frames."""
        import ctranslate2

        frames = features.shape[-1]
        padded = np.zeros((features.shape[0], _window_for(features, min_window)), np.float32)
        padded[:, :frames] = features
        return self._model.model.encode(ctranslate2.StorageView.from_array(padded[None]))

    def _decode_short_window(self, encoded: Any, n_samples: int) -> tuple[str, float | None] | None:
        """Greedy decode of an encoded short window; None if it looped."""
        model = self._model
        tokenizer = self._tokenizer()
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        max_tokens = _MAX_TOKENS_BASE + int(_MAX_TOKENS_PER_S * n_samples / 16000)
        result = model.model.generate(
            encoded, [prompt], beam_size=1, max_length=len(prompt) + max_tokens,
            return_scores=True,
        )[0]  # fmt: skip
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = tokenizer.decode(tokens).strip()
        if _looks_like_a_loop(text):
            log.info("whisper: a short window looped (%s, %.2f s of audio)",
                     caller_text(text[:60], log), n_samples / 16000)  # fmt: skip
            return None
        return text, math.exp(result.scores[0]) if result.scores else None

    def phrase_fits(self, audio: np.ndarray, expected: Sequence[str]) -> list[PhraseFit]:
        """How well each expected phrase, decoded by force, fits ``audio`` (mono int16 at
        16 kHz). Blocking, for tools that study the bars (scripts/bench-expected.py)."""
        check_pcm(audio)
        if self._model is None:
            raise RuntimeError("WhisperEngine is not loaded (or already closed)")
        features = self._model.feature_extractor(audio.astype(np.float32) / 32768.0)
        frames = min(features.shape[-1], _FULL_WINDOW_FRAMES - _WINDOW_MARGIN_FRAMES)
        encoded = self._encode(features[:, :frames], _MIN_WINDOW_FRAMES)
        return self._phrase_fits(encoded, frames, tuple(expected))

    def _fit_closest_first(
        self, encoded: Any, frames: int, heard: str, expected: tuple[str, ...]
    ) -> list[PhraseFit]:
        """The fits ``choose_expected`` needs: the phrases spelt most like ``heard`` first, and
        the others only when none of those fits on its own."""
        phrases = fit_order(heard, expected)
        first = self._phrase_fits(encoded, frames, tuple(phrases[:_FIRST_FITS]))
        if len(phrases) <= _FIRST_FITS or any(fits_alone(fit) for fit in first):
            return first
        return first + self._phrase_fits(encoded, frames, tuple(phrases[_FIRST_FITS:]))

    def _phrase_fits(self, encoded: Any, frames: int, expected: tuple[str, ...]) -> list[PhraseFit]:
        import ctranslate2

        phrases = list(dict.fromkeys(p.strip() for p in expected if p.strip()))
        if not phrases:
            return []
        model = self._model
        tokenizer = self._tokenizer()
        start = model.get_prompt(tokenizer, [], without_timestamps=True)
        tokens = [tokenizer.encode(" " + phrase) for phrase in phrases]
        encoder_output = np.array(encoded)
        if self._fit_context is not None:
            # Two feature frames a position (the encoder's stride).
            positions = min(encoder_output.shape[1], (frames + self._fit_context) // 2)
            encoder_output = np.ascontiguousarray(encoder_output[:, :positions])
            frames = min(frames, 2 * positions)
        batch = np.repeat(encoder_output, len(phrases), axis=0)
        results = model.model.align(
            ctranslate2.StorageView.from_array(batch), start, tokens, [frames] * len(phrases)
        )
        fits = []
        for phrase, result in zip(phrases, results, strict=True):
            logprobs = [math.log(max(p, 1e-12)) for p in result.text_token_probs]
            fits.append(PhraseFit(phrase, sum(logprobs) / len(logprobs), min(logprobs)))
        return fits

    def _transcribe_full_window(
        self, samples: np.ndarray, prompt: str | None
    ) -> tuple[str, float | None]:
        # transcribe() returns a lazy generator: the decoding happens while iterating, so the
        # iteration must stay in this thread too.
        segments, _info = self._model.transcribe(
            samples,
            language=self._language,
            beam_size=1,
            # With timestamps whisper ends segments itself and goes on after each one; without,
            # an early end-of-text after a pause dropped the rest of a long utterance (a 17 s
            # turn came back as its first sentence).
            without_timestamps=False,
            condition_on_previous_text=False,
            vad_filter=False,
            initial_prompt=prompt,
            # One greedy pass, no temperature fallback: the fallback re-decodes low-confidence
            # short answers (measured: "hours" 360 -> 490 ms) and samples randomly, while a
            # phone dialog needs bounded latency and repeatable results.
            temperature=0.0,
            # Bounds a repetition loop; people do not say more than ~5 tokens a second.
            max_new_tokens=_MAX_TOKENS_BASE + int(_MAX_TOKENS_PER_S * len(samples) / 16000),
        )
        texts: list[str] = []
        logprobs: list[float] = []
        for segment in segments:
            texts.append(segment.text.strip())
            logprobs.append(segment.avg_logprob)
        text = " ".join(t for t in texts if t)
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else None
        return text, confidence


def decode_threads(configured: int, model_bytes: int, cores: int) -> int:
    """Cores one decode may use: ``configured`` (``asr.decode_threads``) when set, else 1 for
    a small model and up to ``_LARGE_MODEL_THREADS`` of the machine's ``cores`` for a model of
    ``_LARGE_MODEL_BYTES`` or more."""
    if configured > 0:
        return configured
    if model_bytes >= _LARGE_MODEL_BYTES:
        return max(1, min(_LARGE_MODEL_THREADS, cores))
    return 1


def fit_context(model_bytes: int) -> int | None:
    """Feature frames after the utterance that the forced fit reads, for a model of
    ``model_bytes`` (None: the whole window)."""
    return _LARGE_MODEL_FIT_CONTEXT_FRAMES if model_bytes >= _LARGE_MODEL_BYTES else None


def _model_bytes(directory: Path) -> int:
    try:
        return (directory / "model.bin").stat().st_size
    except OSError:
        return 0


class WhisperRecognizer(Recognizer):
    def __init__(self, engine: WhisperEngine, phrases: Sequence[str] | None) -> None:
        self._engine = engine
        self._chunks: list[np.ndarray] = []
        self._prompt = _prompt_for(phrases) if engine.phrase_hint else None
        self._expected = tuple(phrases or ())

    async def feed(self, pcm: np.ndarray) -> Transcript | None:
        check_pcm(pcm)
        self._chunks.append(pcm.copy())  # the caller may reuse its frame buffer
        return None

    async def finish(self) -> Transcript:
        chunks, self._chunks = self._chunks, []
        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        result = await self._engine.transcribe(audio, self._prompt, self._expected)
        if (
            self._prompt
            and len(self._prompt.split(",")) > 1
            and _norm(result.text) == _norm(self._prompt)
        ):
            return Transcript("", is_final=True, processing_s=result.processing_s)
        return result

    def close(self) -> None:
        self._chunks = []


def _prompt_for(phrases: Sequence[str] | None) -> str | None:
    if not phrases:
        return None
    return ", ".join(p.strip() for p in phrases if p.strip()) + "."


@dataclass(frozen=True)
class PhraseFit:
    """How well one expected phrase, decoded by force, fits the audio: the mean and the worst
    log-probability of its tokens."""

    phrase: str
    mean: float
    worst: float


def choose_expected(fits: Sequence[PhraseFit]) -> PhraseFit | None:
    """The expected phrase that was said, judged from every phrase's forced fit, or None.

    A phrase that fits well on its own is taken (the best such). Failing that, the best of the
    phrases that fit fairly well is taken when they all belong to one answer and it leads
    every phrase of the other answers by ``_LEADING_MARGIN``: that answer said over a noisy
    room, not something else. Phrases of one answer name each other ("operator", "an
    operator"); a script whose phrases of one answer do not is only judged more strictly.
    """
    alone = [f for f in fits if fits_alone(f)]
    if alone:
        return max(alone, key=lambda f: f.mean)
    likely = [
        f for f in fits if f.mean >= _LEADING_MEAN_LOGPROB and f.worst >= _LEADING_WORST_LOGPROB
    ]
    if not likely:
        return None
    best = max(likely, key=lambda f: f.mean)
    rivals = [f for f in fits if not _same_answer(f.phrase, best.phrase)]
    if not rivals or any(f in likely for f in rivals):
        return None
    if best.mean - max(f.mean for f in rivals) < _LEADING_MARGIN:
        return None
    return best


def fits_alone(fit: PhraseFit) -> bool:
    """Whether a phrase fits the audio well enough to be taken on its own."""
    return fit.mean >= _EXPECTED_MEAN_LOGPROB and fit.worst >= _EXPECTED_WORST_LOGPROB


def fit_order(heard: str, expected: Sequence[str]) -> list[str]:
    """The expected phrases (each once) in the order the forced fit tries them: those with
    the most pairs of letters in common with what whisper ``heard`` first («Атиратор» puts
    «оператор» first), ties in their own order."""
    phrases = list(dict.fromkeys(p.strip() for p in expected if p.strip()))
    said = _letter_pairs(heard)

    def likeness(phrase: str) -> float:
        pairs = _letter_pairs(phrase)
        return 2 * len(said & pairs) / (len(said) + len(pairs)) if said and pairs else 0.0

    return sorted(phrases, key=likeness, reverse=True)  # sorted() is stable: ties keep order


def _letter_pairs(text: str) -> set[str]:
    words = " " + " ".join(re.findall(r"\w+", text.lower().replace("ё", "е"))) + " "
    return {words[i : i + 2] for i in range(len(words) - 1)} if words.strip() else set()


def needs_forced_fit(text: str, confidence: float | None, expected: Sequence[str]) -> bool:
    """Whether what whisper heard is checked against the expected phrases by force: when it
    names none of them, or names one at a faint score."""
    if not expected:
        return False
    if not names_an_expected_answer(text, expected):
        return True
    return confidence is not None and confidence < _FAINT_ANSWER_CONFIDENCE


def fit_agrees(text: str, chosen: PhraseFit, expected: Sequence[str]) -> bool:
    """Whether the forced fit's choice may replace what whisper heard: always when the words
    named no answer; when they named one faintly, only that same answer (the fit confirms a
    faint word, it does not overrule it)."""
    if not names_an_expected_answer(text, expected):
        return True
    return _same_answer(text, chosen.phrase)


def expected_confidence(fits: Sequence[PhraseFit], chosen: PhraseFit) -> float:
    """How sure the engine is of an expected phrase it took: its mean token probability when
    it fits well on its own, else its share among the answers (a phrase over a noisy room
    that leads every other answer by 2 nats is taken with about 0.85, not with the 0.02 its
    own tokens score, which would read as no words at all)."""
    if fits_alone(chosen):
        return math.exp(chosen.mean)
    rivals = [f.mean for f in fits if not _same_answer(f.phrase, chosen.phrase)]
    return 1.0 / (1.0 + sum(math.exp(mean - chosen.mean) for mean in rivals))


def _same_answer(a: str, b: str) -> bool:
    return names_an_expected_answer(a, [b]) or names_an_expected_answer(b, [a])


def _window_for(features: np.ndarray, min_window: int) -> int:
    return max(min_window, features.shape[-1] + _WINDOW_MARGIN_FRAMES)


def names_an_expected_answer(text: str, expected: Sequence[str]) -> bool:
    return best_match(text, [(phrase, [phrase]) for phrase in expected]) is not None


def _norm(text: str) -> str:
    # Compare ignoring case and punctuation: "One, two, three." == "one two three".
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def _looks_like_a_loop(text: str) -> bool:
    words = _norm(text).split()
    run = 1
    for previous, word in pairwise(words):
        run = run + 1 if word == previous else 1
        if run >= _LOOP_REPEATS:
            return True
    for size in range(2, 7):
        for start in range(len(words) - size * _LOOP_PHRASE_REPEATS + 1):
            phrase = words[start : start + size]
            if all(
                words[start + k * size : start + (k + 1) * size] == phrase
                for k in range(1, _LOOP_PHRASE_REPEATS)
            ):
                return True
    return False


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
