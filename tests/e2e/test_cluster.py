"""A pool of workers behind HAProxy, on the real Asterisk: per-call ARI WebSockets spread over
the workers, a worker killed mid-call while the Asterisk holds 210 other bridges (its caller
hears the fallback), a worker drained.

The cluster is the one `make cluster` starts (scripts/cluster.sh): the sandbox Asterisk sends
extension 150 to Stasis(voicebot-pool), res_websocket_client opens one WebSocket per call to
HAProxy on 127.0.0.1:8765, which hands it to one of three workers on 127.0.0.2-4.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, AsteriskSandbox
from tests.e2e.helpers import ari_get, ari_request, wait_for, words
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.callprobe import transcribe_received
from voicebot.tools.sip import Hangup, Pause, WaitForBye, place_call

pytestmark = pytest.mark.slow
CLUSTER = REPO / "scripts" / "cluster.sh"
WORKERS = 3
EXTENSION = "150"
APP = "voicebot-pool"
CROWD = 210  # bridges of other calls while a worker dies


def cluster(*args: str, timeout: float = 300) -> str:
    done = subprocess.run([str(CLUSTER), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"scripts/cluster.sh {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def status_url(k: int) -> str:
    return f"http://127.0.0.{k + 1}:{8090 + k}"


def worker_get(k: int, path: str) -> dict[str, Any]:
    """GET on worker k's status server, also when it answers 503 (draining)."""
    try:
        with urllib.request.urlopen(status_url(k) + path, timeout=5) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            raise
        return dict(json.loads(exc.read()))


def worker_pid(k: int) -> int:
    return int((REPO / ".state" / "workers" / f"worker-{k}.pid").read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def active(k: int) -> int:
    try:
        return int(worker_get(k, "/health")["active_calls"])
    except OSError:
        return 0


def served(k: int) -> int:
    return int(worker_get(k, "/health")["calls_total"])


def ours_in_asterisk(asterisk: AsteriskSandbox) -> list[str]:
    """Channels still in a per-call app of the pool, and bridges named after one."""
    left = [
        f"{app['name']}: {c}"
        for app in ari_get(asterisk, "/applications")
        if str(app.get("name", "")).startswith(APP + ":")
        for c in app.get("channel_ids", [])
    ]
    left += [b["id"] for b in ari_get(asterisk, "/bridges")
             if str(b.get("name", "")).startswith(f"voicebot:{APP}:")]  # fmt: skip
    return left


def fallbacks_since(asterisk: AsteriskSandbox, mark: int) -> int:
    """How many callers [voicebot-fallback] logged since ``mark`` (its NOTICE lines)."""
    text = asterisk.log_text()[mark:]
    return len(re.findall(r"NOTICE.*: voicebot-test result error channel=", text))


@pytest.fixture(scope="module")
def pool(asterisk: AsteriskSandbox) -> Iterator[None]:
    cluster("start", str(WORKERS))
    try:
        yield
    finally:
        cluster("stop", timeout=120)


async def test_calls_to_the_pool_are_spread_over_every_worker(
    asterisk: AsteriskSandbox, pool: None, tmp_path: Path
) -> None:
    before = [served(k) for k in range(1, WORKERS + 1)]
    calls = [
        place_call(extension=EXTENSION, workdir=tmp_path / f"c{i}", timeout_s=60,
                   steps=[Pause(6.0), Hangup()])
        for i in range(12)
    ]  # fmt: skip
    results = await asyncio.gather(*calls)
    assert all(r.answered_time is not None and r.hangup_by == "caller" for r in results)
    # Every caller heard the bot (its greeting), not silence.
    assert all(len(r.received_packets) > 50 for r in results)
    after = [served(k) for k in range(1, WORKERS + 1)]
    per_worker = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(per_worker) == 12 and min(per_worker) >= 1, per_worker
    for k in range(1, WORKERS + 1):
        recent = worker_get(k, "/calls")["recent"][-per_worker[k - 1] :]
        assert all(c["app"].startswith(APP + ":") for c in recent), recent
        assert all(c["result"] == "caller_hangup" for c in recent), recent
    await wait_for(lambda: ours_in_asterisk(asterisk) == [], 10, "nothing of ours left")


async def test_a_drained_worker_finishes_its_call_and_takes_no_new_one(
    asterisk: AsteriskSandbox, pool: None, tmp_path: Path
) -> None:
    first = asyncio.create_task(place_call(
        extension=EXTENSION, workdir=tmp_path / "first", timeout_s=60,
        steps=[Pause(9.0), Hangup()]))  # fmt: skip
    await wait_for(lambda: any(active(k) for k in range(1, WORKERS + 1)), 15, "the call to land")
    [k] = [k for k in range(1, WORKERS + 1) if active(k)]
    pid, total = worker_pid(k), served(k)
    os.kill(pid, signal.SIGTERM)
    await wait_for(lambda: worker_get(k, "/health")["status"] == "draining", 2, "503 at once")

    later = [place_call(extension=EXTENSION, workdir=tmp_path / f"later{i}", timeout_s=60,
                        steps=[Pause(3.0), Hangup()]) for i in range(3)]  # fmt: skip
    results = await asyncio.gather(*later)
    assert all(r.answered_time is not None for r in results)
    assert served(k) == total  # no new call reached the draining worker
    result = await first
    assert result.hangup_by == "caller"  # the caller ended the call, not the worker
    await wait_for(lambda: not alive(pid), 30, "the drained worker to exit")
    cluster("start", str(WORKERS))  # back to three for the next test


@pytest.fixture
def crowded(asterisk: AsteriskSandbox) -> Iterator[None]:
    """More than 200 bridges of other calls on the Asterisk: their whole list is more than
    the 64 KiB a per-call socket may carry (Asterisk 22 lists ~380 bytes per bridge)."""
    ids = [f"crowd-{n}" for n in range(CROWD)]
    for bridge_id in ids:
        ari_request(asterisk, "POST", "/bridges", type="mixing", bridgeId=bridge_id,
                    name=f"voicebot:another-bot:{bridge_id}")  # fmt: skip
    try:
        yield
    finally:
        for bridge_id in ids:
            ari_request(asterisk, "DELETE", f"/bridges/{bridge_id}")


async def test_a_killed_worker_s_caller_hears_the_fallback_and_later_calls_go_elsewhere(
    asterisk: AsteriskSandbox, pool: None, crowded: None, whisper: WhisperEngine, tmp_path: Path
) -> None:
    assert len(ari_get(asterisk, "/bridges")) >= CROWD
    mark = len(asterisk.log_text())
    doomed = asyncio.create_task(place_call(
        extension=EXTENSION, workdir=tmp_path / "doomed", timeout_s=60,
        steps=[WaitForBye(timeout_s=45)]))  # fmt: skip
    await wait_for(lambda: any(active(k) for k in range(1, WORKERS + 1)), 15, "the call to land")
    [k] = [k for k in range(1, WORKERS + 1) if active(k)]
    await asyncio.sleep(1.0)  # mid-greeting
    killed_at = time.monotonic()
    os.kill(worker_pid(k), signal.SIGKILL)

    result = await doomed
    # Not silence, not a dropped line: the dialplan's fallback, then Asterisk hangs up.
    assert result.hangup_by == "remote"
    assert fallbacks_since(asterisk, mark) == 1
    heard = " ".join(words(s.text) for s in await transcribe_received(result, whisper))
    assert "try" in heard and "later" in heard, heard
    assert result.hangup_time is not None and result.hangup_time > killed_at

    others = [j for j in range(1, WORKERS + 1) if j != k]
    before = sum(served(j) for j in others)
    later = [place_call(extension=EXTENSION, workdir=tmp_path / f"after{i}", timeout_s=60,
                        steps=[Pause(3.0), Hangup()]) for i in range(4)]  # fmt: skip
    results = await asyncio.gather(*later)
    assert all(r.answered_time is not None and len(r.received_packets) > 50 for r in results)
    assert sum(served(j) for j in others) == before + 4
    assert fallbacks_since(asterisk, mark) == 1
    await wait_for(lambda: ours_in_asterisk(asterisk) == [], 15, "nothing of ours left")
    cluster("start", str(WORKERS))
