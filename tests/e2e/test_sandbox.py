"""The Asterisk sandbox and the sipp test caller, against a real Asterisk (no bot involved).

Uses the test extensions of asterisk-conf/extensions.conf: 900 plays hello-world, 901 echoes,
902 reads DTMF and stores the digits in the Asterisk database under the SIP Call-ID.
"""

from __future__ import annotations

import base64
import itertools
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import numpy as np
import pytest

from tests.support.audio import ALLISON
from voicebot.tools.sip import (
    Dtmf,
    Hangup,
    Pause,
    Play,
    WaitForBye,
    place_call,
    read_wav_8k,
)

if TYPE_CHECKING:
    from conftest import AsteriskSandbox

pytestmark = pytest.mark.asterisk

SANDBOX = Path(__file__).resolve().parents[2] / "scripts" / "asterisk-sandbox.sh"
FRAME = 160  # 20 ms at 8 kHz


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def frame_rms(pcm: np.ndarray) -> np.ndarray:
    frames = pcm[: pcm.size // FRAME * FRAME].astype(np.float64).reshape(-1, FRAME)
    return np.sqrt(np.mean(frames**2, axis=1))


def voiced_seconds(pcm: np.ndarray, threshold: float = 300.0) -> float:
    return float(np.count_nonzero(frame_rms(pcm) > threshold)) * FRAME / 8000


def envelope_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Best normalized correlation of the two 20 ms RMS envelopes over all alignments."""
    ea, eb = frame_rms(a), frame_rms(b)
    ea, eb = ea - ea.mean(), eb - eb.mean()
    corr = np.correlate(ea, eb, mode="full")
    return float(corr.max() / (np.linalg.norm(ea) * np.linalg.norm(eb) + 1e-9))


async def test_ari_answers_with_the_credentials(asterisk: AsteriskSandbox) -> None:
    headers = basic_auth(asterisk.user, asterisk.password)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{asterisk.ari_url}/ari/asterisk/info", headers=headers) as resp,
    ):
        assert resp.status == 200
        info = await resp.json()
    assert "system" in info


async def test_ari_rejects_a_wrong_password(asterisk: AsteriskSandbox) -> None:
    headers = basic_auth(asterisk.user, asterisk.password + "-wrong")
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{asterisk.ari_url}/ari/asterisk/info", headers=headers) as resp,
    ):
        assert resp.status == 401


def test_install_is_idempotent_and_config_is_loaded(asterisk: AsteriskSandbox) -> None:
    done = subprocess.run(
        [str(SANDBOX), "install"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "already installed" in done.stdout
    assert "Stasis(voicebot)" in asterisk.cli("dialplan show 100@voicebot-in")
    assert "operator" in asterisk.cli("dialplan show voicebot-transfer")
    endpoints = asterisk.cli("pjsip show endpoints")
    assert "softphone" in endpoints and "local" in endpoints
    assert "chan_rtp.so" in asterisk.cli("module show like chan_rtp")


async def test_caller_hears_hello_world(asterisk: AsteriskSandbox, tmp_path: Path) -> None:
    result = await place_call(extension="900", steps=[WaitForBye(15)], workdir=tmp_path)
    assert result.sipp_returncode == 0
    assert result.hangup_by == "remote"
    assert result.answered_time is not None
    reference = read_wav_8k(ALLISON / "hello-world.wav")
    heard = result.received_audio
    assert 1.1 < heard.size / 8000 < 2.5, f"received {heard.size / 8000:.2f} s of audio"
    expected = voiced_seconds(reference)
    assert abs(voiced_seconds(heard) - expected) < 0.3 * expected
    assert envelope_similarity(heard, reference) > 0.8
    # Packets are in arrival order and carry consecutive sequence numbers.
    seqs = [p.seq for p in result.received_packets]
    assert len(seqs) >= 60
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))


@pytest.mark.parametrize(("digits", "stored"), [("1234", "1234"), ("42#", "42")])
async def test_dtmf_reaches_asterisk(
    asterisk: AsteriskSandbox, tmp_path: Path, digits: str, stored: str
) -> None:
    result = await place_call(
        extension="902", steps=[Pause(0.5), Dtmf(digits), WaitForBye(15)], workdir=tmp_path
    )
    assert result.hangup_by == "remote"
    assert result.dtmf_sent_time[0] is not None
    out = asterisk.cli(f"database get voicebot-test/dtmf {result.call_id}")
    assert f"Value: {stored}" in out, out
    # 902 answers 1234 with "beep" and anything else with "beeperr".
    prompt = "beep" if stored == "1234" else "beeperr"
    reference = read_wav_8k(ALLISON / f"{prompt}.wav")
    assert envelope_similarity(result.received_audio, reference) > 0.8


async def test_echo_round_trip_and_send_times(asterisk: AsteriskSandbox, tmp_path: Path) -> None:
    speech = read_wav_8k(ALLISON / "hello-world.wav")
    result = await place_call(
        extension="901", steps=[Pause(0.3), Play(speech), Pause(0.5), Hangup()], workdir=tmp_path
    )
    assert result.hangup_by == "caller"
    (sent,) = result.sent_start_time
    assert sent is not None and result.answered_time is not None
    assert 0.2 < sent - result.answered_time < 1.0
    first_echo = result.first_voiced_after(sent)
    assert first_echo is not None and first_echo - sent < 0.5
    assert envelope_similarity(result.received_audio, speech) > 0.8
