"""How the SIP test caller lays out the audio it received."""

from __future__ import annotations

import numpy as np

from voicebot.media.codecs import ULAW
from voicebot.media.rtp import RtpPacket
from voicebot.sipcaller import ReceivedRtp, _assemble_audio


def spurt(start_s: float, first_ts: int, count: int, level: int, seq0: int) -> list[ReceivedRtp]:
    frame = ULAW.encode(np.full(160, level, dtype=np.int16))
    return [
        ReceivedRtp(start_s + n * 0.02, RtpPacket(0, seq0 + n, first_ts + n * 160, 7, frame))
        for n in range(count)
    ]


def test_pauses_the_timestamps_did_not_count_are_placed_by_arrival() -> None:
    # Like Asterisk towards a phone: after a 1.5 s pause the timestamps simply continue.
    first = spurt(0.0, 1000, 50, 1000, 0)  # 1 s of audio
    second = spurt(2.5, 1000 + 50 * 160, 50, -1000, 50)
    audio, start = _assemble_audio(first + second)
    assert start == 0.0
    assert abs(audio.size / 8000 - 3.5) < 0.03
    assert np.all(audio[100:7900] > 0)  # the first second
    assert np.all(audio[8100:19900] == 0)  # the pause stays silent
    assert np.all(audio[20100:27900] < 0)  # the second prompt, where it arrived
