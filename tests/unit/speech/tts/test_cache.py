"""The prompt cache's disk layer: restarts, corruption, voices, size bound, barge-in, privacy."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from tests.support.doubles import CountingTts
from voicebot.config import TtsConfig
from voicebot.speech.tts.cache import MAX_TEMPLATED_AUDIO_S, CachedTts
from voicebot.speech.tts.piper import CachedTts as ReexportedCachedTts
from voicebot.speech.tts.piper import PiperTts

PROMPT = "Thank you for calling. How can I help you today?"


def files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*.pcm"))


async def test_fixed_prompt_survives_a_restart_without_calling_the_engine(tmp_path: Path) -> None:
    first_inner = CountingTts()
    first = CachedTts(first_inner, cache_dir=tmp_path)
    await first.warm([PROMPT])
    expected = [c.copy() async for c in first.stream(PROMPT)]
    assert first_inner.calls == 1
    assert (first.memory_hits, first.disk_hits, first.misses) == (1, 0, 1)
    await first.close()
    assert len(files(tmp_path)) == 1

    # A new process: empty memory, same directory.
    second_inner = CountingTts()
    second = CachedTts(second_inner, cache_dir=tmp_path)
    second.mark_fixed([PROMPT])
    got = [c async for c in second.stream(PROMPT)]
    assert second_inner.calls == 0  # second playback of a fixed prompt does not call Piper
    assert (second.memory_hits, second.disk_hits, second.misses) == (0, 1, 0)
    assert second.hits == 1
    # Same chunking (sentence by sentence) and the same samples.
    assert [len(c) for c in got] == [len(c) for c in expected]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.int16 and not a.flags.writeable
    # The disk hit filled memory: the next play does not even read the file.
    await second.synthesize(PROMPT)
    assert (second.memory_hits, second.disk_hits) == (1, 1)

    # warm() after a restart loads from disk instead of synthesizing.
    third_inner = CountingTts()
    third = CachedTts(third_inner, cache_dir=tmp_path)
    await third.warm([PROMPT])
    assert third_inner.calls == 0 and third.disk_hits == 1 and len(third) == 1
    await second.close()
    await third.close()


async def test_fixed_prompt_streamed_before_warm_reaches_it_is_written(tmp_path: Path) -> None:
    inner = CountingTts()
    cache = CachedTts(inner, cache_dir=tmp_path)
    cache.mark_fixed([PROMPT])
    await cache.synthesize(PROMPT)
    await cache.flush()
    assert len(files(tmp_path)) == 1
    await cache.close()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-2] + bytes([data[-2] ^ 0xFF, data[-1]]),  # a flipped sample
        lambda data: b"garbage" + data,  # not ours
        lambda data: b"",  # empty (e.g. a crash before the data reached the disk)
    ],
    ids=["truncated", "bit-flip", "foreign", "empty"],
)
async def test_corrupt_file_is_ignored_resynthesized_and_rewritten(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    inner = CountingTts()
    cache = CachedTts(inner, cache_dir=tmp_path)
    await cache.warm([PROMPT])
    good = await cache.synthesize(PROMPT)
    await cache.close()
    [path] = files(tmp_path)
    original = path.read_bytes()
    path.write_bytes(damage(original))

    inner = CountingTts()
    cache = CachedTts(inner, cache_dir=tmp_path)
    cache.mark_fixed([PROMPT])
    np.testing.assert_array_equal(await cache.synthesize(PROMPT), good)
    assert inner.calls == 1 and cache.disk_hits == 0 and cache.misses == 1
    await cache.close()
    assert path.read_bytes() == original  # rewritten whole


async def test_file_of_another_key_under_this_name_is_ignored(tmp_path: Path) -> None:
    inner = CountingTts()
    cache = CachedTts(inner, cache_dir=tmp_path)
    await cache.warm(["One.", "Two."])
    await cache.close()
    one, two = files(tmp_path)
    os.replace(one, two)  # "Two." now finds a valid file, but holding another key's audio

    inner = CountingTts()
    cache = CachedTts(inner, cache_dir=tmp_path)
    await cache.warm(["One.", "Two."])
    assert inner.calls == 2 and cache.disk_hits == 0
    await cache.close()


async def test_other_voice_fingerprint_misses(tmp_path: Path) -> None:
    cache = CachedTts(CountingTts("model-a:1234:5678"), cache_dir=tmp_path)
    await cache.warm([PROMPT])
    await cache.close()

    # Same engine name, voice name and text; the model file changed (size/mtime/config).
    other_inner = CountingTts("model-a:1234:9999")
    other = CachedTts(other_inner, cache_dir=tmp_path)
    await other.warm([PROMPT])
    assert other_inner.calls == 1 and other.disk_hits == 0 and other.misses == 1
    await other.close()
    assert len(files(tmp_path)) == 2


async def test_engine_without_fingerprint_is_never_cached_on_disk(tmp_path: Path) -> None:
    class Anonymous(CountingTts):
        pass

    inner = Anonymous()
    del inner.cache_fingerprint  # an engine that cannot name its exact voice
    cache = CachedTts(inner, cache_dir=tmp_path)
    await cache.warm([PROMPT])
    await cache.synthesize(PROMPT)
    await cache.close()
    assert inner.calls == 1 and files(tmp_path) == []


async def test_eviction_keeps_the_size_bound_least_recently_used_first(tmp_path: Path) -> None:
    texts = [f"Prompt {word}." for word in ("alpha", "bravo", "gamma", "delta")]
    probe = CachedTts(CountingTts(), cache_dir=tmp_path / "probe")
    await probe.warm(texts[:1])
    await probe.close()
    size = files(tmp_path / "probe")[0].stat().st_size  # all texts here have the same length

    cache_dir = tmp_path / "cache"
    bound = size * 2 + size // 2  # room for two files
    first = CachedTts(CountingTts(), cache_dir=cache_dir, disk_max_bytes=bound)
    await first.warm(texts[:2])
    await first.close()
    assert len(files(cache_dir)) == 2

    # A new process uses "alpha" from disk (refreshing it), then adds two more prompts.
    inner = CountingTts()
    second = CachedTts(inner, cache_dir=cache_dir, disk_max_bytes=bound)
    await second.warm(texts[:1])
    assert second.disk_hits == 1
    await second.warm(texts[2:3])  # evicts "bravo", the least recently used
    total = sum(p.stat().st_size for p in files(cache_dir))
    assert len(files(cache_dir)) == 2 and total <= bound
    await second.close()

    inner = CountingTts()
    third = CachedTts(inner, cache_dir=cache_dir, disk_max_bytes=bound)
    await third.warm([texts[0], texts[2]])
    assert third.disk_hits == 2 and inner.calls == 0  # "bravo" was the one evicted
    await third.warm(texts[3:])
    assert sum(p.stat().st_size for p in files(cache_dir)) <= bound
    await third.close()


async def test_stale_temp_files_are_cleaned_and_oversized_audio_skipped(tmp_path: Path) -> None:
    stale = tmp_path / ".tmp-dead.pcm"
    stale.write_bytes(b"x" * 100)
    os.utime(stale, (1, 1))
    cache = CachedTts(CountingTts(), cache_dir=tmp_path, disk_max_bytes=5000)
    await cache.warm(["Hi."])  # small enough
    await cache.warm([PROMPT])  # larger than the whole bound: kept in memory only
    await cache.close()
    assert not stale.exists()
    assert len(files(tmp_path)) == 1


async def test_cut_off_stream_is_stored_nowhere(tmp_path: Path) -> None:
    inner = CountingTts()
    cache = CachedTts(inner, cache_dir=tmp_path)
    cache.mark_fixed([PROMPT])
    stream = cache.stream(PROMPT)
    await anext(stream)
    await stream.aclose()  # barge-in after the first sentence
    await cache.flush()
    assert len(cache) == 0 and files(tmp_path) == []

    # Cancelled mid-stream, as the call's speaker task is on barge-in.
    started = asyncio.Event()

    async def play() -> None:
        async for _chunk in cache.stream(PROMPT):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(play())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await cache.flush()
    assert len(cache) == 0 and files(tmp_path) == []

    await cache.synthesize(PROMPT)
    await cache.flush()
    assert inner.calls == 3 and len(files(tmp_path)) == 1
    await cache.close()


async def test_templated_texts_stay_in_memory_only(tmp_path: Path) -> None:
    inner = CountingTts()
    cache = CachedTts(inner, cache_dir=tmp_path)
    await cache.warm([PROMPT])
    personal = "Your booking for Jane Doe is on the 12th at 3 pm."
    await cache.synthesize(personal)
    await cache.synthesize(personal)
    await cache.close()
    assert inner.calls == 2  # the prompt once, the personal text once (then from memory)
    [path] = files(tmp_path)
    assert b"Jane" not in path.read_bytes()

    # A restart does not find it on disk.
    inner = CountingTts()
    cache = CachedTts(inner, cache_dir=tmp_path)
    await cache.synthesize(personal)
    assert inner.calls == 1
    await cache.close()


async def test_first_chunk_of_a_miss_arrives_before_the_text_is_done(tmp_path: Path) -> None:
    inner = CountingTts()
    cache = CachedTts(inner, cache_dir=tmp_path)
    cache.mark_fixed([PROMPT])
    stream = cache.stream(PROMPT)
    first = await anext(stream)
    assert len(first) == len("Thank you for calling.") * 100  # one sentence, not the text
    rest = [c async for c in stream]
    assert len(rest) == 1
    await cache.close()


async def test_disabled_disk_and_unwritable_dir(tmp_path: Path) -> None:
    inner = CountingTts()
    cache = CachedTts(inner, cache_dir="")
    await cache.warm([PROMPT])
    await cache.close()

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    inner = CountingTts()
    cache = CachedTts(inner, cache_dir=blocker / "cache")
    await cache.warm([PROMPT])  # logs a warning, does not raise
    assert len(await cache.synthesize(PROMPT)) > 0 and inner.calls == 1
    await cache.close()


def test_piper_module_still_exports_cached_tts() -> None:
    assert ReexportedCachedTts is CachedTts
    assert TtsConfig().cache_dir == ".state/tts-cache"


@pytest.mark.slow
async def test_real_piper_prompt_read_back_from_disk(tmp_path: Path) -> None:
    warmer = CachedTts(PiperTts(TtsConfig()), cache_dir=tmp_path)
    await warmer.load()
    await warmer.warm([PROMPT])
    expected = await warmer.synthesize(PROMPT)
    await warmer.close()
    assert len(files(tmp_path)) == 1

    piper = PiperTts(TtsConfig())
    fresh = CachedTts(piper, cache_dir=tmp_path)
    await fresh.load()
    before = piper.sentences_synthesized
    fresh.mark_fixed([PROMPT])
    chunks = [c async for c in fresh.stream(PROMPT)]
    assert piper.sentences_synthesized == before
    assert fresh.disk_hits == 1 and fresh.misses == 0
    assert len(chunks) == 2  # still sentence by sentence
    np.testing.assert_array_equal(np.concatenate(chunks), expected)
    await fresh.close()


async def test_a_templated_text_starts_with_its_cached_head_while_the_rest_is_made() -> None:
    inner = CountingTts()
    tts = CachedTts(inner)
    await tts.warm_heads(["You said"])
    assert inner.calls == 1
    head = [c async for c in tts.stream("You said")]  # the head alone is an ordinary prompt
    spoken = [c async for c in tts.stream("You said 4 2 1.")]
    assert inner.calls == 2  # only "4 2 1." was synthesized
    np.testing.assert_array_equal(spoken[0], np.concatenate(head))
    rest = [c async for c in inner.stream("4 2 1.")]
    np.testing.assert_array_equal(np.concatenate(spoken[1:]), np.concatenate(rest))
    # A text that only shares the first letters, or is the head itself, is not spliced.
    assert tts._head_of("You saidx 4") is None and tts._head_of("You said ") is None


async def test_a_barge_in_during_the_head_stops_the_rest_too() -> None:
    class Slow(CountingTts):
        async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
            self.calls += 1
            await asyncio.sleep(10)
            yield np.zeros(10, np.int16)

    inner = Slow()
    tts = CachedTts(inner)
    tts._heads["You said"] = (np.ones(160, np.int16),)
    stream = tts.stream("You said 4 2 1.")
    first = await anext(stream)
    assert first.size == 160
    await stream.aclose()  # the speaker was cancelled
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "tts-after-head"]


async def test_cache_serves_second_stream_from_memory() -> None:
    inner = CountingTts()
    cache = CachedTts(inner, max_entries=2)
    first = await cache.synthesize("Hello. Goodbye.")
    second = await cache.synthesize("Hello. Goodbye.")
    np.testing.assert_array_equal(first, second)
    assert inner.calls == 1
    assert (cache.hits, cache.misses) == (1, 1)


async def test_cache_warm_lru_and_cancelled_streams() -> None:
    inner = CountingTts()
    cache = CachedTts(inner, max_entries=2)
    await cache.warm(["One.", "Two.", "Two."])
    assert inner.calls == 2 and len(cache) == 2
    await cache.synthesize("One.")  # now "Two." is the least recently used
    await cache.synthesize("Three.")
    await cache.synthesize("One.")
    assert inner.calls == 3
    await cache.synthesize("Two.")
    assert inner.calls == 4

    # A stream abandoned halfway is not cached as if it were the whole text.
    stream = cache.stream("Part one. Part two.")
    await anext(stream)
    await stream.aclose()
    await cache.synthesize("Part one. Part two.")
    assert inner.calls == 6


async def test_a_long_templated_text_is_streamed_and_kept_nowhere() -> None:
    inner = CountingTts()  # 100 samples per character at 16 kHz: 160 characters a second
    cache = CachedTts(inner)
    answer = "Your parcel went through many depots on its way. " * 40  # ~12 s of audio
    assert len(await cache.synthesize(answer)) > MAX_TEMPLATED_AUDIO_S * 16000
    await cache.synthesize(answer)
    assert inner.calls == 2 and len(cache) == 0 and cache.memory_bytes == 0
    # A short templated text is still kept (a confirmation said again), and so is a fixed
    # prompt of any length.
    await cache.synthesize("You said 4 2 1.")
    await cache.warm([answer])
    assert len(cache) == 2 and inner.calls == 4


async def test_memory_holds_at_most_its_byte_budget_least_recently_used_first() -> None:
    inner = CountingTts()
    per_text = 100 * len("Prompt number 10.") * 2  # bytes of one text's audio
    cache = CachedTts(inner, memory_max_bytes=3 * per_text)
    await cache.warm([f"Prompt number {n}." for n in range(10, 15)])
    assert len(cache) == 3 and cache.memory_bytes == 3 * per_text
    await cache.synthesize("Prompt number 14.")
    await cache.synthesize("Prompt number 10.")  # evicted: made again
    assert inner.calls == 6
    await cache.close()
    assert cache.memory_bytes == 0
