"""Running unattended, on the real Asterisk: the call limit and its busy fallback, the error
fallback, two bots on one Asterisk with one of them killed and restarted mid-call, Asterisk
itself killed mid-call, and the metrics that show it.

The bots here answer extensions 920-939 (asterisk-conf/extensions.conf) as ARI apps
voicebot-ops and voicebot-ops2, with the patient menu of tests/fixtures/ops/.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    REPO,
    SANDBOX,
    AsteriskSandbox,
    RunningBot,
    bot_environment,
    run_bot,
)
from tests.e2e.helpers import allison, ari_get, caller_intents, last_call, wait_for, words
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.callprobe import transcribe_received, voice_to_voice_ms
from voicebot.tools.sip import Hangup, Pause, Play, Step, WaitForBye, place_call

pytestmark = pytest.mark.slow
SCRIPTS = REPO / "tests" / "fixtures" / "ops"
OPS_PORT, OPS2_PORT = 18095, 18096
LONG_ANSWER_PORT = 18099  # tests/fixtures/ops/long_answer.yaml; allowed by bot_environment
# About 340 KB: hours of speech, were it all said (or synthesized ahead: ~900 MB of audio).
LONG_ANSWER = " ".join(f"Item {n} of your order is ready." for n in range(10_000))


def ops_environment(asterisk: AsteriskSandbox, app: str, http_port: int, ports: int,
                    **overrides: str) -> dict[str, str]:  # fmt: skip
    return bot_environment(
        asterisk,
        VOICEBOT_ARI_APP=app,
        VOICEBOT_HTTP_PORT=str(http_port),
        VOICEBOT_MEDIA_PORT_MIN=str(ports),
        VOICEBOT_MEDIA_PORT_MAX=str(ports + 99),
        VOICEBOT_DIALOG_SCRIPTS_DIR=str(SCRIPTS),
        VOICEBOT_DIALOG_DEFAULT_SCRIPT="patient",
        **overrides,
    )


@pytest.fixture(scope="module")
def ops(
    asterisk: AsteriskSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBot]:
    """Bot A: at most two calls at once."""
    workdir = tmp_path_factory.mktemp("ops")
    env = ops_environment(asterisk, "voicebot-ops", OPS_PORT, 42600,
                          VOICEBOT_CALLS_MAX_ACTIVE="2")  # fmt: skip
    yield from run_bot(env, workdir / "voicebot.log", OPS_PORT)


def result_last(asterisk: AsteriskSandbox) -> str:
    """Where [voicebot-after] last sent a caller: "busy" or "error" (from its log line)."""
    found = re.findall(r"voicebot-test result (\w+) channel=", asterisk.log_text())
    return found[-1] if found else ""


def health(bot: RunningBot) -> dict[str, Any]:
    """GET /health, also when it answers 503 (ARI disconnected)."""
    import json
    import urllib.error

    try:
        return bot.get("/health")
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            raise
        return dict(json.loads(exc.read()))


def metric(bot: RunningBot, name: str, labels: str = "") -> float:
    import urllib.request

    with urllib.request.urlopen(bot.status_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" (\S+)"
    match = re.search("^" + pattern + "$", text, re.MULTILINE)
    assert match, f"{name}{{{labels}}} not in /metrics:\n{text[:2000]}"
    return float(match.group(1))


def ours_in_asterisk(asterisk: AsteriskSandbox, app: str) -> list[str]:
    """The channels in ``app`` and the bridges named after it that Asterisk still holds."""
    import base64
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{asterisk.ari_url}/ari/applications/{app}")
    auth = base64.b64encode(f"{asterisk.user}:{asterisk.password}".encode()).decode()
    request.add_header("Authorization", "Basic " + auth)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            left = list(json.loads(response.read()).get("channel_ids", []))
    except urllib.error.HTTPError as exc:  # 404: the app is not registered (no bot)
        if exc.code != 404:
            raise
        left = []
    left += [b["id"] for b in ari_get(asterisk, "/bridges")
             if str(b.get("name", "")).startswith(f"voicebot:{app}:")]  # fmt: skip
    return left


async def test_a_caller_over_the_limit_hears_busy_and_is_never_dropped(
    asterisk: AsteriskSandbox, ops: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    busy_before = metric(ops, "voicebot_calls_total", 'result="busy"')
    served = [
        asyncio.create_task(place_call(extension="920", workdir=tmp_path / f"served{i}",
                                       timeout_s=60, steps=[Pause(7.0), Hangup()]))
        for i in range(2)
    ]  # fmt: skip
    await wait_for(lambda: ops.get("/health")["active_calls"] == 2, 15, "two calls at the bot")
    third = await place_call(extension="920", workdir=tmp_path / "third", timeout_s=40,
                             steps=[WaitForBye(timeout_s=30)])  # fmt: skip
    await asyncio.gather(*served)

    # The third caller heard Allison say all circuits are busy, and Asterisk hung up.
    assert third.hangup_by == "remote"
    heard = " ".join(words(s.text) for s in await transcribe_received(third, whisper))
    assert "circuits" in heard and "busy" in heard, heard
    assert result_last(asterisk) == "busy"
    assert metric(ops, "voicebot_calls_total", 'result="busy"') == busy_before + 1
    assert ops.get("/health")["calls_refused"] >= 1
    await wait_for(lambda: ops.get("/health")["active_calls"] == 0, 15, "the calls to end")


async def test_a_call_the_bot_cannot_serve_goes_to_the_fallback(
    asterisk: AsteriskSandbox, ops: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    result = await place_call(extension="921", workdir=tmp_path, timeout_s=40,
                              steps=[WaitForBye(timeout_s=30)])  # fmt: skip
    assert result.hangup_by == "remote"
    heard = " ".join(words(s.text) for s in await transcribe_received(result, whisper))
    assert "try" in heard and "later" in heard, heard  # the fallback, not silence
    assert result_last(asterisk) == "error"
    call = ops.get("/calls")["recent"][-1]
    assert call["result"] == "error" and "nosuchscript" in call["end_reason"], call
    assert ours_in_asterisk(asterisk, "voicebot-ops") == []


async def test_a_transfer_asterisk_refuses_hands_the_caller_back_to_the_fallback(
    asterisk: AsteriskSandbox, ops: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    failed_before = ops.get("/health")["calls_failed"]
    result = await place_call(extension="922", workdir=tmp_path, timeout_s=40,
                              steps=[WaitForBye(timeout_s=30)])  # fmt: skip
    assert result.hangup_by == "remote"
    heard = " ".join(words(s.text) for s in await transcribe_received(result, whisper))
    # The bot's line, then the dialplan's fallback: not silence, not a dropped line.
    assert "connecting" in heard and "try" in heard and "later" in heard, heard
    assert result_last(asterisk) == "error"
    call = ops.get("/calls")["recent"][-1]
    assert call["result"] == "error", call
    assert "refused the transfer to voicebot-transfer,operator,nosuchlabel" in call["end_reason"]
    assert ops.get("/health")["calls_failed"] == failed_before + 1
    assert ours_in_asterisk(asterisk, "voicebot-ops") == []


async def test_a_transfer_to_a_priority_label_lands_there(
    asterisk: AsteriskSandbox, ops: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    result = await place_call(extension="923", workdir=tmp_path, timeout_s=40,
                              steps=[WaitForBye(timeout_s=30)])  # fmt: skip
    heard = " ".join(words(s.text) for s in await transcribe_received(result, whisper))
    assert "connecting" in heard and "hold" in heard, heard  # the label's Playback()
    call = ops.get("/calls")["recent"][-1]
    assert call["result"] == "transferred", call
    assert call["end_reason"] == "transfer to voicebot-transfer,operator,prompt", call
    assert ours_in_asterisk(asterisk, "voicebot-ops") == []


def rss_mb(bot: RunningBot) -> float:
    """The bot process's resident memory."""
    status = Path(f"/proc/{bot.process.pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) / 1024


@contextlib.asynccontextmanager
async def long_answer_service() -> AsyncIterator[None]:
    """The web service of long_answer.yaml: a runaway answer of about 340 KB of text."""
    from aiohttp import web

    async def long(_: web.Request) -> web.Response:
        return web.json_response({"text": LONG_ANSWER})

    app = web.Application()
    app.router.add_get("/long", long)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", LONG_ANSWER_PORT).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def patient_answer_ms(tmp_path: Path) -> float:
    """Voice to voice at the caller of one answer to the patient menu (extension 920)."""
    hours = allison("hours")
    steps: list[Step] = [Pause(3.0), Play(hours), WaitForBye(timeout_s=20)]
    result = await place_call(extension="920", workdir=tmp_path, timeout_s=40, steps=steps)
    latency = voice_to_voice_ms(result, 0, hours)
    assert result.hangup_by == "remote" and latency is not None
    return latency


async def test_a_runaway_webhook_answer_is_spoken_in_bounded_memory_beside_another_call(
    asterisk: AsteriskSandbox, ops: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    alone_ms = await patient_answer_ms(tmp_path / "alone")
    async with long_answer_service():
        before_mb = rss_mb(ops)
        reading = asyncio.create_task(place_call(
            extension="924", workdir=tmp_path / "long", timeout_s=60,
            steps=[Pause(30.0), Hangup()],
        ))  # fmt: skip
        await wait_for(lambda: ops.get("/health")["active_calls"] == 1, 15, "the long call")
        peak_mb = before_mb
        answering = asyncio.create_task(patient_answer_ms(tmp_path / "beside"))
        while not (answering.done() and reading.done()):
            peak_mb = max(peak_mb, rss_mb(ops))
            await asyncio.sleep(0.25)
        beside_ms, long_call = answering.result(), reading.result()
    print(f"\nvoice to voice of the patient menu: alone {alone_ms:.0f} ms, beside the long "
          f"answer {beside_ms:.0f} ms; bot RSS {before_mb:.0f} MB before, {peak_mb:.0f} MB at "
          f"most during")  # fmt: skip
    heard = " ".join(words(s.text) for s in await transcribe_received(long_call, whisper))
    assert "item" in heard and "ready" in heard, heard  # it was being read out ...
    assert long_call.hangup_by == "caller"  # ... for all of the caller's 30 s
    assert f"a prompt of {len(LONG_ANSWER)} characters cut to 1" in ops.log_text()
    # Bounded: the whole answer synthesized would be ~900 MB; what is held is a few seconds of
    # audio, beside Piper's own working set, which rises by ~70 MB the first time it reads
    # many sentences in a row (the same for any long prompt of a script).
    assert peak_mb - before_mb < 150, (before_mb, peak_mb)
    await wait_for(lambda: ops.get("/health")["active_calls"] == 0, 15, "the calls to end")
    assert ours_in_asterisk(asterisk, "voicebot-ops") == []


async def test_restarting_one_bot_leaves_the_other_bots_call_alone(
    asterisk: AsteriskSandbox, ops: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    env = ops_environment(asterisk, "voicebot-ops2", OPS2_PORT, 42700)
    first_b = run_bot(env, tmp_path / "b1.log", OPS2_PORT)
    bot_b = next(first_b)
    restarted: Generator[RunningBot, None, None] | None = None
    try:
        call_a = asyncio.create_task(place_call(
            extension="920", workdir=tmp_path / "a", timeout_s=90,
            steps=[Pause(30.0), Play(allison("hours")), WaitForBye(timeout_s=20)],
        ))  # fmt: skip
        call_b = asyncio.create_task(place_call(
            extension="930", workdir=tmp_path / "b", timeout_s=90,
            steps=[WaitForBye(timeout_s=80)],
        ))  # fmt: skip
        await wait_for(lambda: ops.get("/health")["active_calls"] == 1, 15, "A's call")
        await wait_for(lambda: bot_b.get("/health")["active_calls"] == 1, 15, "B's call")

        # B dies without a word and comes back: its resync must clean up B's own call only.
        bot_b.process.send_signal(signal.SIGKILL)
        bot_b.process.wait(timeout=10)
        restarted = run_bot(env, tmp_path / "b2.log", OPS2_PORT)
        bot_b = next(restarted)
        result_b = await asyncio.wait_for(call_b, 30)
        assert result_b.hangup_by == "remote"  # handed back: the fallback spoke and hung up
        assert result_last(asterisk) == "error"
        await wait_for(lambda: ours_in_asterisk(asterisk, "voicebot-ops2") == [], 10,
                       "B's old media channel and bridge to go")  # fmt: skip
        assert ops.get("/health")["active_calls"] == 1  # A's call is still there

        # ... and goes on: A's caller answers and hears the branch.
        result_a = await call_a
        heard = [words(s.text) for s in await transcribe_received(result_a, whisper)]
        assert result_a.hangup_by == "remote" and "chose" in heard[-1], heard
        assert caller_intents(last_call(ops)) == ["hours"]
        assert "resync" in bot_b.log_text()
    finally:
        for generator in (first_b, restarted):
            if generator is not None:
                generator.close()


async def test_asterisk_killed_mid_call_then_back_leaves_nothing_and_the_next_call_works(
    asterisk: AsteriskSandbox, ops: RunningBot, bot: RunningBot, tmp_path: Path
) -> None:
    # The session-wide bot is asked for too, so that it is healthy again for later tests.
    call = asyncio.create_task(place_call(extension="920", workdir=tmp_path / "before",
                                          timeout_s=60, steps=[Pause(40.0), Hangup()]))  # fmt: skip
    await wait_for(lambda: ops.get("/health")["active_calls"] == 1, 15, "the call at the bot")
    pid = int((REPO / ".state" / "asterisk" / "asterisk.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: not Path(f"/proc/{pid}/comm").exists()
                   or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", 10,
                   "Asterisk to die")  # fmt: skip
    await wait_for(lambda: not health(ops)["ari_connected"], 15, "the bot to see it")
    assert health(ops)["status"] == "ari-disconnected"
    assert metric(ops, "voicebot_ari_connected") == 0.0
    started = await asyncio.to_thread(
        subprocess.run, [str(SANDBOX), "start"], capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    with contextlib.suppress(Exception):  # sipp's call died with Asterisk: whatever it says
        await asyncio.wait_for(call, 60)
    for running in (ops, bot):
        await wait_for(lambda r=running: health(r)["ari_connected"], 30,  # type: ignore[misc]
                       "the bots to reconnect")  # fmt: skip
    # The call whose channel died with Asterisk is ended and cleaned up on the reconnect.
    await wait_for(lambda: ops.get("/health")["active_calls"] == 0, 15, "the ghost call to end")
    assert ops.get("/health")["ports_in_use"] == 0
    assert ours_in_asterisk(asterisk, "voicebot-ops") == []
    assert metric(ops, "voicebot_ari_connected") == 1.0

    after = await place_call(
        extension="920", workdir=tmp_path / "after", timeout_s=40,
        steps=[Pause(3.0), Play(allison("hours")), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    assert after.hangup_by == "remote"
