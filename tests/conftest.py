"""Fixtures shared by unit and end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voicebot.config import AsrConfig
from voicebot.speech.asr.whisper import WhisperEngine


@pytest.fixture
async def whisper() -> AsyncIterator[WhisperEngine]:
    """The bundled whisper model, to check what a caller heard or a fixture says."""
    engine = WhisperEngine(AsrConfig())
    await engine.load()
    yield engine
    await engine.close()
