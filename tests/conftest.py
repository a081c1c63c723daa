"""Fixtures shared by unit and end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.replaying import Replayer
from voicebot.config import AsrConfig
from voicebot.speech.asr.whisper import WhisperEngine


@pytest.fixture
async def whisper() -> AsyncIterator[WhisperEngine]:
    """The bundled whisper model, to check what a caller heard or a fixture says."""
    engine = WhisperEngine(AsrConfig())
    await engine.load()
    yield engine
    await engine.close()


@pytest.fixture
async def replay() -> AsyncIterator[Replayer]:
    """Replay a capture through the real pipeline and dialog (see tests/support/replaying.py)."""
    replayer = Replayer()
    yield replayer
    await replayer.close()
