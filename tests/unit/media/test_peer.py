"""media.peer: the test-side RTP peer knows when its caller's voice really ended."""

from __future__ import annotations

import asyncio

import numpy as np

from voicebot.media.codecs import ULAW
from voicebot.media.peer import RtpPeer


async def test_last_voiced_frame_and_first_voiced_answer() -> None:
    caller = await RtpPeer.open()
    bot = await RtpPeer.open()
    try:
        caller.bot = bot.address
        bot.bot = caller.address
        speech = np.zeros(8000 * 3 // 10, dtype=np.int16)  # 0.3 s: 0.1 s voice, 0.2 s silence
        speech[:800] = 4000
        await caller.send_speech(speech, ULAW)
        # The voice ended four frames into the 15-frame file, not at its last packet.
        assert 0 < caller.last_voiced_sent < caller.last_sent
        assert caller.last_sent - caller.last_voiced_sent > 0.15

        answer = np.zeros(800, dtype=np.int16)
        answer[480:] = 4000  # three quiet frames, then voice
        await bot.send_speech(answer, ULAW)
        await asyncio.sleep(0.05)
        first = caller.first_voiced_since(caller.last_voiced_sent, ULAW)
        assert first is not None
        quiet = caller.received_since(caller.last_voiced_sent)
        assert len(quiet) == 5 and first is quiet[3]
    finally:
        caller.close()
        bot.close()
