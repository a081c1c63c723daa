"""Outbound campaigns on the real Asterisk: the bot dials the sandbox's [callees] (a person,
an answering machine with a beep, busy, no answer; asterisk-conf/extensions.conf) through
``Local/{number}@callees/n`` and every attempt ends in the campaign store.

What the callee heard is read from the callee side's own recording (MixMonitor), transcribed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, AsteriskSandbox, RunningBot, bot_environment, run_bot
from tests.e2e.helpers import heard_line, wait_for
from voicebot.media.codecs import resample
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.sip import read_wav_8k

pytestmark = pytest.mark.slow

OUT_PORT = 18102
SCRIPTS = REPO / "tests" / "fixtures" / "outbound"
MONITOR = REPO / ".state" / "asterisk" / "root" / "var" / "spool" / "asterisk" / "monitor"
PERSON, MACHINE, BUSY, NO_ANSWER = "5551001", "5551002", "5551003", "5551004"
SHY_MACHINE = "5551005"  # "Hello." and a pause, like a person, then its voicemail greeting
NEVER = "5551009"  # on the do-not-call list
GREETING = "Hello {name}. This is Parcel Express. Your parcel arrives tomorrow morning."
MESSAGE = (
    "Hello {name}. This is Parcel Express with a message about your parcel. It arrives "
    "tomorrow morning."
)


def voicebot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "voicebot"), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def outbound_env(asterisk: AsteriskSandbox, workdir: Path) -> dict[str, str]:
    (workdir / "dnc.txt").write_text(f"# asked not to be called\n{NEVER}\n")
    return bot_environment(
        asterisk,
        VOICEBOT_ARI_APP="voicebot-out",
        VOICEBOT_HTTP_PORT=str(OUT_PORT),
        VOICEBOT_MEDIA_PORT_MIN="43000",
        VOICEBOT_MEDIA_PORT_MAX="43099",
        VOICEBOT_DIALOG_SCRIPTS_DIR=str(SCRIPTS),
        VOICEBOT_DIALOG_DEFAULT_SCRIPT="parcel",
        VOICEBOT_OUTBOUND_ENDPOINT="Local/{number}@callees/n",
        VOICEBOT_OUTBOUND_RING_TIMEOUT_S="5",
        VOICEBOT_OUTBOUND_CALLS_PER_SECOND="5",
        VOICEBOT_OUTBOUND_MAX_ACTIVE="4",
        VOICEBOT_OUTBOUND_DNC_FILE=str(workdir / "dnc.txt"),
        VOICEBOT_OUTBOUND_STORE=str(workdir / "campaigns.sqlite"),
        VOICEBOT_RESULTS_FILE=str(workdir / "results.jsonl"),
    )


@pytest.fixture
def out_env(asterisk: AsteriskSandbox, tmp_path: Path) -> dict[str, str]:
    return outbound_env(asterisk, tmp_path)


@pytest.fixture
def out_bot(out_env: dict[str, str], tmp_path: Path) -> Iterator[RunningBot]:
    yield from run_bot(out_env, tmp_path / "voicebot.log", OUT_PORT)


def fetch_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def write_contacts(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def window_around_now(hours: int = 2) -> str:
    """A call window holding the present moment in UTC (the tests run at any hour)."""
    now = datetime.now(UTC)
    start = max(now - timedelta(hours=hours), now.replace(hour=0, minute=0))
    end = min(now + timedelta(hours=hours), now.replace(hour=23, minute=59))
    return f"{start:%H:%M}-{end:%H:%M}"


def far_zone() -> str:
    """A zone where it is now outside ``window_around_now()``: about 12 hours off UTC."""
    return "Etc/GMT-12" if datetime.now(UTC).hour < 12 else "Etc/GMT+12"


def export(env: dict[str, str], campaign: str) -> list[dict[str, Any]]:
    done = voicebot(env, "campaign", "export", campaign, "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


async def until_settled(env: dict[str, str], campaign: str, numbers: set[str], within_s: float
                        ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The export's rows by number once every number of ``numbers`` has a final status."""
    deadline = time.monotonic() + within_s
    while True:
        rows = {row["number"]: row for row in export(env, campaign)}
        if all(rows[n]["status"] != "pending" for n in numbers):
            return rows
        if time.monotonic() > deadline:
            pytest.fail(f"campaign not settled in {within_s:g} s: {rows}")
        await asyncio.sleep(1.0)


def callee_recordings(asterisk: AsteriskSandbox, number: str, since: int) -> list[Path]:
    """The recordings of the calls ``number`` answered, logged after offset ``since``."""
    text = asterisk.log_text()[since:]
    # Each Log() shows twice in the log (its verbose line and its NOTICE): once each here.
    names = re.findall(rf"voicebot-test callee {number} answered recording=([\w;.-]+?\.wav)", text)
    return [MONITOR / name for name in dict.fromkeys(names)]


async def transcribe_file(path: Path, whisper: WhisperEngine, begin_s: float = 0.0) -> str:
    await wait_for(path.exists, 10, f"the callee's recording {path.name}")
    audio = read_wav_8k(path)[int(begin_s * 8000) :]
    pieces = [audio[i : i + 8000 * 25] for i in range(0, audio.size, 8000 * 25)]
    texts = [(await whisper.transcribe(resample(p, 8000, 16000))).text for p in pieces if p.size]
    return " ".join(texts)


BEEP_S = 0.43  # Allison's beep.wav (asterisk-core-sounds-en-wav), its trailing quiet included


def logged_at(text: str, pattern: str) -> float:
    """The time (s of the day) of the NOTICE line of the Asterisk log matching ``pattern``."""
    match = re.search(r"\[\S+ (\d+):(\d+):([\d.]+)\] NOTICE\[[^\n]*" + pattern, text)
    assert match, f"no log line {pattern!r}"
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def beep_end_s(asterisk: AsteriskSandbox, number: str, since: int) -> float:
    """Where the machine's beep ends in its callee recording: from the dialplan's own log
    lines (the recording starts as the "answered" line is written)."""
    text = asterisk.log_text()[since:]
    started = logged_at(text, rf"callee {number} answered")
    return logged_at(text, rf"callee {number} beep") - started + BEEP_S


async def test_a_campaign_reaches_a_person_leaves_a_message_and_retries_the_rest(
    asterisk: AsteriskSandbox,
    out_env: dict[str, str],
    out_bot: RunningBot,
    whisper: WhisperEngine,
    tmp_path: Path,
) -> None:
    since = len(asterisk.log_text())
    contacts = write_contacts(tmp_path / "contacts.csv", [
        {"number": PERSON, "first_name": "Anna", "timezone": ""},
        {"number": MACHINE, "first_name": "Boris", "timezone": ""},
        {"number": BUSY, "first_name": "Clara", "timezone": ""},
        {"number": NO_ANSWER, "first_name": "Dmitri", "timezone": ""},
        {"number": NEVER, "first_name": "Eve", "timezone": ""},
        {"number": SHY_MACHINE, "first_name": "Gina", "timezone": ""},
        {"number": "5552001", "first_name": "Fedor", "timezone": far_zone()},
    ])  # fmt: skip
    started = voicebot(out_env, "campaign", "start", str(contacts), "--script", "parcel",
                       "--name", "e2e", "--window", window_around_now(), "--days",
                       "mon-sun", "--max-attempts", "2", "--retry",
                       "busy=3s,no_answer=3s,failed=3s")  # fmt: skip
    assert started.returncode == 0, started.stderr
    settled = {PERSON, MACHINE, BUSY, NO_ANSWER, NEVER, SHY_MACHINE}
    rows = await until_settled(out_env, "e2e", settled, 120)

    assert rows[PERSON]["status"] == "answered" and rows[PERSON]["attempts"] == 1, rows[PERSON]
    assert rows[PERSON]["amd"] == "human", rows[PERSON]
    assert rows[MACHINE]["status"] == "message_left", rows[MACHINE]
    assert rows[MACHINE]["amd"] == "machine"
    # Taken for a person by its "Hello." and pause, then corrected by its words: the message
    # still waits for the beep.
    assert rows[SHY_MACHINE]["status"] == "message_left", rows[SHY_MACHINE]
    (shy,) = callee_recordings(asterisk, SHY_MACHINE, since)
    after_beep = await transcribe_file(
        shy, whisper, begin_s=beep_end_s(asterisk, SHY_MACHINE, since)
    )
    assert heard_line(after_beep, MESSAGE.format(name="Gina")), after_beep
    # Retried by the policy, and final after max_attempts.
    assert (rows[BUSY]["status"], rows[BUSY]["attempts"]) == ("busy", 2), rows[BUSY]
    assert (rows[NO_ANSWER]["status"], rows[NO_ANSWER]["attempts"]) == ("no_answer", 2)
    # Never dialled: on the do-not-call list; outside its own window: waits.
    assert (rows[NEVER]["status"], rows[NEVER]["attempts"]) == ("dnc", 0)
    assert (rows["5552001"]["status"], rows["5552001"]["attempts"]) == ("pending", 0)
    assert not callee_recordings(asterisk, NEVER, since)

    # The person heard the script, with their own name, after their "hello".
    (person,) = callee_recordings(asterisk, PERSON, since)
    heard = await transcribe_file(person, whisper)
    assert heard_line(heard, GREETING.format(name="Anna")), heard
    # The machine got the message after its beep, and nothing of it before.
    (machine,) = callee_recordings(asterisk, MACHINE, since)
    beep = beep_end_s(asterisk, MACHINE, since)
    after = await transcribe_file(machine, whisper, begin_s=beep)
    assert heard_line(after, MESSAGE.format(name="Boris")), after
    before = await transcribe_file_part(machine, whisper, beep)
    assert "parcel" not in before.lower() and "boris" not in before.lower(), before

    # The CSV export holds all of it, one row per contact, with their own columns.
    done = voicebot(out_env, "campaign", "export", "e2e", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    numbers = [PERSON, MACHINE, BUSY, NO_ANSWER, NEVER, SHY_MACHINE, "5552001"]
    assert [r["number"] for r in table] == numbers
    assert table[0]["first_name"] == "Anna" and table[0]["status"] == "answered"
    # A result record for every attempt, and the answered calls' own records name theirs.
    await wait_for(lambda: (tmp_path / "results.jsonl").exists(), 10, "the results file")
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    attempts = [r for r in records if r.get("kind") == "outbound-attempt"]
    assert [r["outcome"] for r in attempts if r["number"] == BUSY] == ["busy", "busy"]
    calls = [r for r in records if "kind" not in r]
    (person_call,) = [r for r in calls if r["call_id"] == rows[PERSON]["result"]["call_id"]]
    assert person_call["campaign"] == "e2e" and person_call["amd"]["verdict"] == "human"
    metrics = await asyncio.to_thread(fetch_text, out_bot.status_url + "/metrics")
    assert 'voicebot_outbound_attempts_total{outcome="busy"} 2.0' in metrics
    assert 'voicebot_amd_verdicts_total{verdict="machine"} 2.0' in metrics


async def transcribe_file_part(path: Path, whisper: WhisperEngine, end_s: float) -> str:
    audio = read_wav_8k(path)[: int(end_s * 8000)]
    return (await whisper.transcribe(resample(audio, 8000, 16000)[: 16000 * 29])).text


async def test_a_bot_killed_mid_campaign_goes_on_without_calling_anyone_twice(
    asterisk: AsteriskSandbox, out_env: dict[str, str], tmp_path: Path
) -> None:
    since = len(asterisk.log_text())
    numbers = [f"55520{i:02d}" for i in range(10, 16)]
    contacts = write_contacts(
        tmp_path / "people.csv", [{"number": n, "first_name": "Sam"} for n in numbers]
    )
    started = voicebot(out_env, "campaign", "start", str(contacts), "--script", "parcel",
                       "--name", "killed", "--window", window_around_now(), "--days",
                       "mon-sun", "--retry", "failed=2s")  # fmt: skip
    assert started.returncode == 0, started.stderr
    log_path = tmp_path / "first.log"
    first = run_bot(out_env, log_path, OUT_PORT)
    bot = next(first)
    # Kill it while calls are up: some attempts are dialling, some done, some not begun.
    await wait_for(lambda: "calling line" in bot.log_text(), 60, "the first call placed")
    await asyncio.sleep(3.0)
    bot.process.send_signal(signal.SIGKILL)
    bot.process.wait(timeout=10)
    first.close()  # (its clean-up finds the process already gone)
    second = run_bot(out_env, tmp_path / "second.log", OUT_PORT)
    next(second)
    try:
        rows = await until_settled(out_env, "killed", set(numbers), 150)
    finally:
        second.close()
    for number in numbers:
        row = rows[number]
        assert row["status"] == "answered", row
        # Every call the callee side answered is an attempt in the store: none twice.
        answered = len(callee_recordings(asterisk, number, since))
        assert answered <= row["attempts"], (number, answered, row)


CONSOLE_TOKEN = "e2e-outbound-console-token"


def console_api(bot: RunningBot, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The web console's API with the bearer token: GET, or POST ``body`` (JSON)."""
    request = urllib.request.Request(
        f"{bot.status_url}/console/api{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {CONSOLE_TOKEN}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


async def test_the_console_pauses_and_resumes_a_running_campaign(
    asterisk: AsteriskSandbox, out_env: dict[str, str], tmp_path: Path
) -> None:
    numbers = [f"55520{i:02d}" for i in range(20, 25)]
    contacts = write_contacts(
        tmp_path / "console.csv", [{"number": n, "first_name": "Sam"} for n in numbers]
    )
    started = voicebot(out_env, "campaign", "start", str(contacts), "--script", "parcel",
                       "--name", "console", "--window", window_around_now(), "--days",
                       "mon-sun")  # fmt: skip
    assert started.returncode == 0, started.stderr
    env = {**out_env, "VOICEBOT_HTTP_TOKEN": CONSOLE_TOKEN,
           "VOICEBOT_CONSOLE_HISTORY": str(tmp_path / "history.sqlite"),
           # One call at a time, so that a pause leaves contacts not yet called.
           "VOICEBOT_OUTBOUND_MAX_ACTIVE": "1"}  # fmt: skip
    running = run_bot(env, tmp_path / "voicebot.log", OUT_PORT)
    bot = next(running)
    try:
        await wait_for(lambda: "calling line" in bot.log_text(), 60, "the first call placed")
        paused = console_api(bot, "/campaigns/console/pause", {})["campaign"]
        assert paused["state"] == "paused"
        placed = bot.log_text().count("calling line")
        await asyncio.sleep(15.0)  # two or three more calls, were it still running
        assert bot.log_text().count("calling line") == placed  # the one in flight finished
        (listed,) = [c for c in console_api(bot, "/campaigns")["campaigns"]
                     if c["name"] == "console"]  # fmt: skip
        assert listed["state"] == "paused" and listed["counts"].get("pending", 0) >= 3, listed
        assert console_api(bot, "/campaigns/console/resume", {})["campaign"]["state"] == "running"
        rows = await until_settled(env, "console", set(numbers), 150)
        assert all(rows[n]["status"] == "answered" for n in numbers), rows
        # Every campaign call is in the console's history, with its campaign and AMD verdict.
        calls = console_api(bot, "/history/search", {"script": "parcel"})
        assert calls["total"] == len(numbers), calls
        one = console_api(bot, f"/history/{calls['rows'][0]['call_id']}")
        assert one["record"]["campaign"] == "console" and one["record"]["amd"]["verdict"] == "human"
    finally:
        running.close()
