"""A recorded call's audio: both sides on one clock, WAV of each, where each side is voiced.

Real recordings of our own recorder (tests/fixtures/captures) and small ones written with the
same marks, where exact times are asserted."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from voicebot.call.recording import BOT_MAC, CALLER_MAC
from voicebot.capture.pcap import UdpDatagram, read_pcap, rtp_stream_from_pcm, write_pcap
from voicebot.errors import CaptureError, VoicebotError
from voicebot.media.codecs import SLIN8, SLIN16, ULAW, Codec
from voicebot.server.console.media import (
    RecordingError,
    call_audio,
    voice_segments,
)

CAPTURES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "captures"
SPOKEN = CAPTURES / "demo-hours-goodbye.pcap"  # caller says "hours" at ~8 s, "goodbye" ~16 s
KEYS_ONLY = CAPTURES / "bank-keys-balance.pcap"  # the caller sent keys, no audio at all
ASTERISK = ("10.0.0.1", 10000)
BOT = ("10.0.0.2", 40000)
T0 = 1_700_000_000.0


def tone(seconds: float, rate: int, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def side(pcm: np.ndarray, codec: Codec, start: float, mac: bytes) -> list[UdpDatagram]:
    src, dst = (ASTERISK, BOT) if mac == CALLER_MAC else (BOT, ASTERISK)
    datagrams = rtp_stream_from_pcm(pcm, codec=codec, src=src, dst=dst, ssrc=7, start_time=start)
    for datagram in datagrams:
        datagram.link_src = mac
    return datagrams


def recording(tmp_path: Path, *sides: list[UdpDatagram]) -> Path:
    path = tmp_path / "call.pcap"
    write_pcap(path, sorted((d for s in sides for d in s), key=lambda d: d.time))
    return path


def wav_info(data: bytes) -> tuple[int, int, int]:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnchannels(), wav.getframerate(), wav.getnframes()


def test_a_real_recording_gives_both_sides_on_one_clock() -> None:
    audio = call_audio(SPOKEN)
    datagrams = read_pcap(SPOKEN)
    assert audio.started == min(d.time for d in datagrams)
    assert audio.rate == ULAW.sample_rate
    assert len(audio.caller) == len(audio.bot) == round(audio.duration_s * audio.rate)
    assert max(d.time for d in datagrams) - audio.started <= audio.duration_s < 21
    caller, bot = audio.voice()
    # The caller's phone sent 8 s of silence, then "hours"; 7.5 s later "goodbye".
    assert len(caller) == 2
    assert 7.8 < caller[0][0] < 8.5 and 15.8 < caller[1][0] < 16.8
    assert bot[0][0] < 0.5  # the greeting, at once
    # The bot answered each after the caller spoke, and did not talk over them.
    assert any(caller[0][1] < start < caller[1][0] for start, _ in bot)
    assert all(end <= audio.duration_s for _, end in caller + bot)


def test_each_wav_lasts_the_whole_call_and_both_is_stereo() -> None:
    audio = call_audio(SPOKEN)
    frames = len(audio.caller)
    assert wav_info(audio.wav("caller")) == (1, 8000, frames)
    assert wav_info(audio.wav("bot")) == (1, 8000, frames)
    assert wav_info(audio.wav("both")) == (2, 8000, frames)
    with wave.open(io.BytesIO(audio.wav("both"))) as wav:
        stereo = np.frombuffer(wav.readframes(frames), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(stereo[:, 0], audio.caller)  # left: the caller
    assert np.array_equal(stereo[:, 1], audio.bot)  # right: the bot
    with pytest.raises(ValueError, match="side"):
        audio.wav("everyone")  # type: ignore[arg-type]


def test_a_caller_who_only_pressed_keys_is_silence_as_long_as_the_call() -> None:
    audio = call_audio(KEYS_ONLY)
    assert len(audio.caller) == len(audio.bot) > 20 * audio.rate
    assert not audio.caller.any()
    caller, bot = audio.voice()
    assert caller == [] and len(bot) >= 4


def test_sides_are_placed_by_when_their_packets_came(tmp_path: Path) -> None:
    rate = ULAW.sample_rate
    bot = side(np.concatenate([tone(1.0, rate), silence(2.0, rate)]), ULAW, T0, BOT_MAC)
    caller = side(tone(0.6, rate), ULAW, T0 + 2.0, CALLER_MAC)
    audio = call_audio(recording(tmp_path, bot, caller))
    assert audio.started == pytest.approx(T0)
    assert audio.duration_s == pytest.approx(3.0, abs=0.03)
    caller_voice, bot_voice = audio.voice()
    assert caller_voice == [(pytest.approx(2.0, abs=0.03), pytest.approx(2.6, abs=0.03))]
    assert bot_voice == [(0.0, pytest.approx(1.0, abs=0.03))]


def test_a_wideband_call_is_one_rate_both_sides_equally_long(tmp_path: Path) -> None:
    # Asterisk sends slin16; the bot answers L16 at 8 kHz.
    caller = side(tone(1.0, SLIN16.sample_rate), SLIN16, T0 + 0.5, CALLER_MAC)
    bot = side(tone(1.0, SLIN8.sample_rate), SLIN8, T0, BOT_MAC)
    audio = call_audio(recording(tmp_path, caller, bot))
    assert audio.rate == SLIN16.sample_rate
    assert len(audio.caller) == len(audio.bot) == pytest.approx(1.5 * audio.rate, abs=10)
    caller_voice, bot_voice = audio.voice()
    assert caller_voice[0][0] == pytest.approx(0.5, abs=0.03)
    assert bot_voice[0] == (0.0, pytest.approx(1.0, abs=0.03))


def test_a_recording_cut_mid_packet_gives_the_call_so_far(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    data = SPOKEN.read_bytes()
    cut.write_bytes(data[: len(data) // 2 + 5])
    audio = call_audio(cut)
    assert 5 < audio.duration_s < call_audio(SPOKEN).duration_s


def test_what_cannot_be_read_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "gone.pcap"
    with pytest.raises(CaptureError, match=r"gone\.pcap: no such file"):
        call_audio(missing)
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"this is not a capture at all")
    with pytest.raises(CaptureError, match=r"garbage\.pcap"):
        call_audio(garbage)
    with pytest.raises(CaptureError, match=r"cannot read"):
        call_audio(tmp_path)  # a directory
    foreign = tmp_path / "foreign.pcap"
    write_pcap(
        foreign, rtp_stream_from_pcm(tone(0.2, 8000), codec=ULAW, src=ASTERISK, dst=BOT, ssrc=1)
    )
    with pytest.raises(RecordingError, match=r"foreign\.pcap: not a voicebot recording"):
        call_audio(foreign)
    assert issubclass(RecordingError, CaptureError) and issubclass(RecordingError, VoicebotError)


def test_an_empty_recording_is_no_audio(tmp_path: Path) -> None:
    audio = call_audio(recording(tmp_path))
    assert audio.started is None and audio.duration_s == 0
    assert audio.voice() == ([], [])
    assert wav_info(audio.wav("both")) == (2, audio.rate, 0)


RATE = 8000


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([silence(2.0, RATE)], []),
        ([silence(0.5, RATE), tone(0.5, RATE), silence(0.5, RATE)], [(0.5, 1.0)]),
        # Gaps between words are bridged; a pause of a second is not.
        ([tone(0.4, RATE), silence(0.2, RATE), tone(0.4, RATE)], [(0.0, 1.0)]),
        ([tone(0.4, RATE), silence(1.0, RATE), tone(0.4, RATE)], [(0.0, 0.4), (1.4, 1.8)]),
        # A click is not voice; line noise under the floor neither.
        ([silence(0.5, RATE), tone(0.02, RATE), silence(0.5, RATE)], []),
        ([tone(1.0, RATE, amplitude=200)], []),
    ],
)
def test_voice_segments(pieces: list[np.ndarray], expected: list[tuple[float, float]]) -> None:
    assert voice_segments(np.concatenate(pieces), RATE) == expected


def test_voice_segments_at_16k_and_with_a_floor_of_ones_own() -> None:
    pcm = np.concatenate([silence(0.3, 16000), tone(0.5, 16000, amplitude=200)])
    assert voice_segments(pcm, 16000) == []
    assert voice_segments(pcm, 16000, floor_rms=100) == [(0.3, 0.8)]
    assert voice_segments(np.zeros(0, dtype=np.int16), 16000) == []
    with pytest.raises(ValueError, match="rate"):
        voice_segments(pcm, 0)
