"""How received RTP is laid out as audio (the SIP test caller, replayed calls)."""

from __future__ import annotations

import numpy as np

from voicebot.capture.timeline import lay_out_audio
from voicebot.media.codecs import ULAW
from voicebot.media.rtp import RtpPacket
from voicebot.tools.sip.result import ReceivedRtp


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
    audio, start = lay_out_audio(first + second, ULAW)
    assert start == 0.0
    assert abs(audio.size / 8000 - 3.5) < 0.03
    assert np.all(audio[100:7900] > 0)  # the first second
    assert np.all(audio[8100:19900] == 0)  # the pause stays silent
    assert np.all(audio[20100:27900] < 0)  # the second prompt, where it arrived


def test_other_payload_types_and_a_change_of_ssrc() -> None:
    first = spurt(0.0, 1000, 10, 1000, 0)
    # A new stream (new SSRC, unrelated timestamps) is placed where it arrived.
    second = [
        ReceivedRtp(
            r.arrival_time, RtpPacket(0, r.packet.sequence, 99999 + n * 160, 8, r.packet.payload)
        )
        for n, r in enumerate(spurt(1.0, 0, 10, -1000, 10))
    ]
    event = ReceivedRtp(0.5, RtpPacket(101, 99, 5, 7, b"\x01\x00\x00\xa0"))
    audio, _ = lay_out_audio([*first, event, *second], ULAW)
    assert abs(audio.size / 8000 - 1.2) < 0.01
    assert np.all(audio[8100:9500] < 0)
    assert np.all(audio[1700:7900] == 0)


def test_no_audio() -> None:
    audio, start = lay_out_audio([], ULAW)
    assert audio.size == 0 and start is None
