"""Fixtures shared by unit and end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.replaying import Replayer
from voicebot.config import AsrConfig
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.speech.discovery import multilingual_whisper_model


@pytest.fixture
async def whisper() -> AsyncIterator[WhisperEngine]:
    """The bundled whisper model, to check what a caller heard or a fixture says."""
    engine = WhisperEngine(AsrConfig())
    await engine.load()
    yield engine
    await engine.close()


@pytest.fixture
async def whisper_ru() -> AsyncIterator[WhisperEngine]:
    """whisper base multilingual hearing Russian (make test installs it), to check what a
    caller heard from a Russian script or what a Russian fixture says."""
    model = multilingual_whisper_model()
    if model is None:
        pytest.fail("whisper base is not installed: make setup VOICEBOT_LANGUAGES=en,ru")
    engine = WhisperEngine(AsrConfig(whisper_model=str(model)), "ru")
    await engine.load()
    yield engine
    await engine.close()


@pytest.fixture
async def replay() -> AsyncIterator[Replayer]:
    """Replay a capture through the real pipeline and dialog (see tests/support/replaying.py)."""
    replayer = Replayer()
    yield replayer
    await replayer.close()
