"""Scripts that replace a dialplan, on real calls through the sandbox Asterisk: a branch on a
web service's answer, a branch on business hours, a recorded prompt heard and interrupted, a
transfer whose channel variables the dialplan reads back, and a result record for every call,
delivered exactly once though the results server is down at first or the bot is killed.

The bot here is ARI app voicebot-flows on extensions 940-949 (asterisk-conf/extensions.conf),
its scripts tests/fixtures/flows/94X.yaml plus the business-hours ones this module writes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.conftest import REPO, AsteriskSandbox, RunningBot, bot_environment, run_bot
from tests.e2e.helpers import allison, last_call, wait_for, words
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.callprobe import barge_in_stop_ms, transcribe_received
from voicebot.tools.sip import Dtmf, Pause, Play, WaitForBye, place_call, read_wav_8k

pytestmark = pytest.mark.slow
FLOWS = REPO / "tests" / "fixtures" / "flows"
FLOWS_PORT, KILLED_PORT = 18097, 18094
WEBHOOK_PORT = 18099  # the parcel script's web service (allowed by bot_environment)
RESULTS_PORT = 18098  # where the bot posts its result records


def hours_script(start: datetime, end: datetime) -> str:
    """A script whose office is open every day from ``start`` to ``end`` (UTC wall clock)."""
    return f"""\
name: Flows hours
start: route
calendars:
  office:
    timezone: UTC
    open: {{mon-sun: "{start:%H:%M}-{end:%H:%M}"}}
states:
  route:
    branch:
      - {{if: 'open("office")', goto: open}}
      - {{else: closed}}
  open: {{say: "We are open. Goodbye.", hangup: true}}
  closed: {{say: "We are closed now. Goodbye.", hangup: true}}
"""


def flows_environment(asterisk: AsteriskSandbox, http_port: int, workdir: Path,
                      **overrides: str) -> dict[str, str]:  # fmt: skip
    settings = {
        "VOICEBOT_ARI_APP": "voicebot-flows",
        "VOICEBOT_HTTP_PORT": str(http_port),
        "VOICEBOT_MEDIA_PORT_MIN": "42800",
        "VOICEBOT_MEDIA_PORT_MAX": "42899",
        "VOICEBOT_DIALOG_SCRIPTS_DIR": str(workdir / "scripts"),
        "VOICEBOT_DIALOG_DEFAULT_SCRIPT": "940",
        "VOICEBOT_WEBHOOKS_ALLOW_HOSTS": f"127.0.0.1:{WEBHOOK_PORT},127.0.0.1:{RESULTS_PORT}",
        "VOICEBOT_RESULTS_WEBHOOK": f"http://127.0.0.1:{RESULTS_PORT}/results",
        "VOICEBOT_RESULTS_FILE": str(workdir / "results.jsonl"),
        "VOICEBOT_RESULTS_OUTBOX": str(workdir / "outbox.sqlite"),
        "VOICEBOT_RESULTS_RETRY_INITIAL_S": "0.5",
        "VOICEBOT_RESULTS_RETRY_MAX_S": "1.0",
    }
    return bot_environment(asterisk, **{**settings, **overrides})


def scripts_in(workdir: Path) -> None:
    """The fixtures, and business hours around the real time: open now (941), closed (944)."""
    scripts = workdir / "scripts"
    shutil.copytree(FLOWS, scripts)
    now = datetime.now(UTC)
    (scripts / "941.yaml").write_text(hours_script(now - timedelta(hours=2),
                                                   now + timedelta(hours=2)))  # fmt: skip
    (scripts / "944.yaml").write_text(hours_script(now + timedelta(hours=2),
                                                   now + timedelta(hours=4)))  # fmt: skip


@pytest.fixture(scope="module")
def flows(
    asterisk: AsteriskSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningBot, Path]]:
    workdir = tmp_path_factory.mktemp("flows")
    scripts_in(workdir)
    env = flows_environment(asterisk, FLOWS_PORT, workdir)
    for running in run_bot(env, workdir / "voicebot.log", FLOWS_PORT):
        yield running, workdir


class Recorder:
    """An in-process web service that answers with ``answer`` and keeps what it was sent."""

    def __init__(self, answer: Any = None) -> None:
        self.answer = answer
        self.received: list[tuple[dict[str, str], Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.received.append((dict(request.headers), body))
        return web.json_response(self.answer if self.answer is not None else {"ok": True})


@pytest.fixture
async def service() -> AsyncIterator[Recorder]:
    """The parcel service the 940 script asks (port 18099)."""
    recorder = Recorder()
    app = web.Application()
    app.router.add_route("*", "/parcel", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", WEBHOOK_PORT).start()
    try:
        yield recorder
    finally:
        await runner.cleanup()


async def results_server(recorder: Recorder) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/results", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", RESULTS_PORT).start()
    return runner


def calls_seen(bot: RunningBot) -> int:
    return len(bot.get("/calls")["recent"])


async def call_after(bot: RunningBot, seen: int) -> dict[str, Any]:
    """The bot's record of the call that ended after it had seen ``seen`` calls."""
    await wait_for(lambda: calls_seen(bot) > seen, 15, "the call's end in /calls")
    return last_call(bot)


def bot_lines(call: dict[str, Any]) -> list[str]:
    return [line["text"] for line in call["transcript"] if line["who"] == "bot"]


# What the bot says, and the part of it whisper hears reliably ("late" comes back as "light").
@pytest.mark.parametrize(
    ("parcel", "said", "heard_part"),
    [
        ({"status": "delivered"}, "Your parcel was delivered yesterday. Goodbye.",
         "delivered yesterday"),
        ({"status": "late", "days_late": 4}, "Your parcel is late. Let me put you through",
         "put you through"),
        ({"status": "late", "days_late": "1"}, "Your parcel arrives tomorrow. Goodbye.",
         "arrives tomorrow"),
    ],
)  # fmt: skip
async def test_a_call_branches_on_the_web_service_s_answer(
    asterisk: AsteriskSandbox,
    flows: tuple[RunningBot, Path],
    service: Recorder,
    whisper: WhisperEngine,
    tmp_path: Path,
    parcel: dict[str, Any],
    said: str,
    heard_part: str,
) -> None:
    bot, _ = flows
    service.answer = parcel
    before = calls_seen(bot)
    result = await place_call(extension="940", workdir=tmp_path, timeout_s=40,
                              steps=[WaitForBye(timeout_s=30)])  # fmt: skip
    call = await call_after(bot, before)
    assert bot_lines(call)[0].startswith(said)
    heard = " ".join(words(s.text) for s in await transcribe_received(result, whisper))
    assert heard_part in heard, heard


# (whisper hears the bot's "closed now" as "close now" at times)
@pytest.mark.parametrize(("extension", "said"), [("941", "we are open"), ("944", "we are clos")])
async def test_business_hours_decide_the_path(
    flows: tuple[RunningBot, Path],
    whisper: WhisperEngine,
    tmp_path: Path,
    extension: str,
    said: str,
) -> None:
    bot, _ = flows
    before = calls_seen(bot)
    result = await place_call(extension=extension, workdir=tmp_path, timeout_s=30,
                              steps=[WaitForBye(timeout_s=20)])  # fmt: skip
    call = await call_after(bot, before)
    assert words(bot_lines(call)[0]).startswith(said)
    heard = " ".join(words(s.text) for s in await transcribe_received(result, whisper))
    assert said in heard, heard


async def test_a_recorded_prompt_is_heard_and_the_caller_can_cut_it_short(
    flows: tuple[RunningBot, Path], whisper: WhisperEngine, tmp_path: Path
) -> None:
    bot, _ = flows
    hours = allison("hours")
    # "hello world" (1.5 s), then Allison's long IVR menu: the caller answers 4 s into it.
    answer_at_s = 5.5
    before = calls_seen(bot)
    result = await place_call(
        extension="942", workdir=tmp_path, timeout_s=60,
        steps=[Pause(answer_at_s), Play(hours), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    call = await call_after(bot, before)
    assert bot_lines(call)[:2] == ["[sound hello-world]", "[sound basic-pbx-ivr-main]"]
    assert [line.get("intent") for line in call["transcript"] if line["who"] == "caller"] == [
        "hours"
    ]
    heard = " ".join(words(s.text) for s in await transcribe_received(result, whisper))
    # (whisper writes the bot's "hours" as "ours" at times: the intent above is what counts)
    assert "hello world" in heard and "you chose" in heard, heard
    stop_ms = barge_in_stop_ms(result, 0, hours)  # the first (only) audio the caller plays
    assert stop_ms is not None and stop_ms < 1000, stop_ms


async def test_a_transfer_s_variables_reach_the_dialplan(
    asterisk: AsteriskSandbox,
    flows: tuple[RunningBot, Path],
    whisper: WhisperEngine,
    tmp_path: Path,
) -> None:
    bot, _ = flows
    before = calls_seen(bot)
    result = await place_call(
        extension="943", workdir=tmp_path, timeout_s=60,
        steps=[Pause(2.5), Dtmf("4217"), WaitForBye(timeout_s=30)],
    )  # fmt: skip
    await wait_for(lambda: "voicebot-test agent account=4217" in asterisk.log_text(), 10,
                   "the dialplan's log line of the agent's desk")  # fmt: skip
    assert "agent account=4217 intent=balance" in asterisk.log_text()
    call = await call_after(bot, before)
    assert call["result"] == "transferred"
    heard = " ".join(words(s.text) for s in await transcribe_received(result, whisper))
    assert "4 2 1 7" in heard or "four two one seven" in heard, heard


async def test_every_call_s_record_arrives_once_though_the_results_server_starts_late(
    flows: tuple[RunningBot, Path], service: Recorder, tmp_path: Path
) -> None:
    bot, workdir = flows
    service.answer = {"status": "delivered"}
    ids = []
    for n in range(2):  # the results server is not up yet: the records wait on disk
        before = calls_seen(bot)
        await place_call(extension="940", workdir=tmp_path / str(n), timeout_s=40,
                         steps=[WaitForBye(timeout_s=30)])  # fmt: skip
        ids.append((await call_after(bot, before))["call_id"])
    received = Recorder()
    runner = await results_server(received)
    try:
        await wait_for(lambda: {ids[0], ids[1]} <= {b["call_id"] for _, b in received.received},
                       20, "both records at the results server")  # fmt: skip
        await asyncio.sleep(3)  # retries would show up by now (retry_max_s = 1)
    finally:
        await runner.cleanup()
    ours = [(h, b) for h, b in received.received if b["call_id"] in ids]
    assert sorted(b["call_id"] for _, b in ours) == sorted(ids)  # each exactly once
    assert all(h["Idempotency-Key"] == b["key"] for h, b in ours)
    record = next(b for _, b in ours)
    assert record["outcome"] == "completed" and record["path"] == ["lookup", "route", "delivered"]
    in_file = [json.loads(line) for line in (workdir / "results.jsonl").read_text().splitlines()]
    assert sorted(r["call_id"] for r in in_file if r["call_id"] in ids) == sorted(ids)


async def test_records_waiting_when_the_bot_is_killed_are_delivered_after_its_restart(
    asterisk: AsteriskSandbox, service: Recorder, tmp_path: Path
) -> None:
    workdir = tmp_path / "killed"
    workdir.mkdir()
    scripts_in(workdir)
    env = flows_environment(asterisk, KILLED_PORT, workdir, VOICEBOT_ARI_APP="voicebot-flows2",
                            VOICEBOT_MEDIA_PORT_MIN="42900",
                            VOICEBOT_MEDIA_PORT_MAX="42999")  # fmt: skip
    service.answer = {"status": "delivered"}
    first = run_bot(env, workdir / "first.log", KILLED_PORT)
    bot = next(first)
    try:
        await place_call(extension="950", workdir=tmp_path / "call", timeout_s=40,
                         steps=[WaitForBye(timeout_s=30)])  # fmt: skip
        call_id = (await call_after(bot, 0))["call_id"]
        await asyncio.sleep(1.0)  # the record is on disk: the call's end stored it
        os.kill(bot.process.pid, signal.SIGKILL)
        bot.process.wait(timeout=10)
    finally:
        first.close()
    received = Recorder()
    runner = await results_server(received)
    try:
        again = run_bot(env, workdir / "second.log", KILLED_PORT)
        next(again)
        try:
            await wait_for(lambda: any(b["call_id"] == call_id for _, b in received.received),
                           20, "the killed bot's record")  # fmt: skip
        finally:
            again.close()
    finally:
        await runner.cleanup()
    assert [b["call_id"] for _, b in received.received].count(call_id) == 1


async def test_a_question_none_of_a_menu_s_phrases_holds_is_understood_by_meaning(
    flows: tuple[RunningBot, Path], tmp_path: Path
) -> None:
    """945.yaml's hours intent says "opening hours" and "when is the shop open"; the caller
    asks "what time do you open tomorrow" (tests/fixtures/audio/when-open.wav)."""
    bot, _ = flows
    before = calls_seen(bot)
    question = read_wav_8k(FLOWS.parent / "audio" / "when-open.wav")
    await place_call(
        extension="945", workdir=tmp_path, timeout_s=60,
        steps=[Pause(2.0), Play(question), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    call = await call_after(bot, before)
    assert [line.get("intent") for line in call["transcript"] if line["who"] == "caller"] == [
        "hours"
    ]
    assert f"call {call['call_id']}: intent 'hours' by meaning" in bot.log_text()
