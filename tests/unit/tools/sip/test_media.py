"""The audio the test caller sends: WAV prompts in, one RTP pcap per Play/Dtmf step out."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio import ALLISON
from voicebot.capture.pcap import UdpDatagram, read_pcap
from voicebot.capture.wav import read_wav, write_wav
from voicebot.media.codecs import ULAW
from voicebot.media.dtmf import DTMF_DIGITS
from voicebot.media.rtp import RtpPacket
from voicebot.tools.sip.media import (
    PCAP_BASE_TIME,
    plan_media,
    read_wav_8k,
    write_media,
)
from voicebot.tools.sip.scenario import Dtmf, Hangup, Pause, Play, Step

MEDIA = ("127.0.0.1", 24000)


def test_read_wav_8k_is_read_wav_of_an_8k_file(tmp_path: Path) -> None:
    pcm, rate = read_wav(ALLISON / "hello-world.wav")
    assert rate == 8000
    assert np.array_equal(read_wav_8k(ALLISON / "hello-world.wav"), pcm)
    assert np.array_equal(read_wav_8k(str(ALLISON / "hello-world.wav")), pcm)


def test_read_wav_8k_refuses_other_rates(tmp_path: Path) -> None:
    write_wav(tmp_path / "wide.wav", np.zeros(160, dtype=np.int16), 16000)
    with pytest.raises(ValueError, match=r"wide\.wav: need an 8 kHz 16-bit WAV, got 16000 Hz"):
        read_wav_8k(tmp_path / "wide.wav")


def packets(datagrams: list[UdpDatagram]) -> list[RtpPacket]:
    return [RtpPacket.parse(d.payload) for d in datagrams]


def test_steps_share_one_stream_with_continuous_numbering() -> None:
    pcm = (np.arange(500) * 37 % 4000).astype(np.int16)  # 3 frames and a padded one
    steps: list[Step] = [Pause(0.5), Play(pcm), Pause(0.25), Dtmf("1#"), Play(pcm), Hangup()]
    plan = plan_media(steps, *MEDIA, "127.0.0.2", rng=random.Random(7))
    assert plan.pcaps == {1: "step01-play.pcap", 3: "step03-dtmf.pcap", 4: "step04-play.pcap"}
    assert set(plan.datagrams) == set(plan.pcaps)

    play1, dtmf, play2 = (packets(plan.datagrams[i]) for i in (1, 3, 4))
    everything = play1 + dtmf + play2
    assert {p.ssrc for p in everything} == {plan.ssrc}
    first = play1[0].sequence
    assert [p.sequence for p in everything] == [(first + n) % 65536 for n in range(len(everything))]
    assert plan.first_seq == {1: first, 3: dtmf[0].sequence, 4: play2[0].sequence}

    # Timestamps advance with the schedule: the audio, the pause, each digit's period.
    ts = play1[0].timestamp
    assert [p.timestamp for p in play1] == [(ts + n * 160) % 2**32 for n in range(4)]
    after_pause = ts + 4 * 160 + 2000
    assert {p.timestamp for p in dtmf} == {after_pause % 2**32, (after_pause + 1920) % 2**32}
    assert play2[0].timestamp == (after_pause + 2 * 1920) % 2**32
    assert {p.payload_type for p in play1 + play2} == {ULAW.payload_type}
    assert {p.payload_type for p in dtmf} == {101}
    assert [p.payload[0] for p in dtmf if p.marker] == [
        DTMF_DIGITS.index("1"),
        DTMF_DIGITS.index("#"),
    ]


def test_packets_go_from_the_media_port_and_start_at_the_base_time() -> None:
    plan = plan_media([Play(np.ones(320, dtype=np.int16)), Dtmf("5")], *MEDIA, "10.1.2.3")
    for datagrams in plan.datagrams.values():
        assert {(d.src, d.dst[0]) for d in datagrams} == {(MEDIA, "10.1.2.3")}
    assert [d.time - PCAP_BASE_TIME for d in plan.datagrams[0]] == pytest.approx([0, 0.02])
    # A key press is first reported once 20 ms of its tone have passed.
    assert plan.datagrams[1][0].time - PCAP_BASE_TIME == pytest.approx(0.02)


def test_play_audio_is_the_pcmu_of_the_step() -> None:
    pcm, _ = read_wav(ALLISON / "hello-world.wav")
    plan = plan_media([Play(pcm)], *MEDIA, "127.0.0.1", rng=random.Random(1))
    decoded = np.concatenate([ULAW.decode(p.payload) for p in packets(plan.datagrams[0])])
    assert np.array_equal(decoded[: len(pcm)], ULAW.decode(ULAW.encode(pcm)))


def test_write_media_writes_the_pcaps_the_scenario_names(tmp_path: Path) -> None:
    steps: list[Step] = [Play(np.ones(400, dtype=np.int16)), Pause(1), Dtmf("9")]
    plan = plan_media(steps, *MEDIA, "127.0.0.1", rng=random.Random(3))
    write_media(plan, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step00-play.pcap", "step02-dtmf.pcap"]
    for index, name in plan.pcaps.items():
        back = read_pcap(tmp_path / name)
        assert [(d.src, d.dst, d.payload) for d in back] == [
            (d.src, d.dst, d.payload) for d in plan.datagrams[index]
        ]
