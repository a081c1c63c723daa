"""The results outbox: every record reaches every target once, under one key, through a results
server that is down, a restart, a crash mid-write and a SIGKILL; rotation; back-off; the
allow-list. Real SQLite files, a real results file and in-process aiohttp servers."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voicebot.call.webhook import WebhookPolicy
from voicebot.config import ResultsConfig, WebhookConfig
from voicebot.errors import ConfigError
from voicebot.server import results
from voicebot.server.metrics import Metrics
from voicebot.server.results import Backlog, ResultsOutbox, backoff_s, verdict

ROOT = Path(__file__).resolve().parents[3]
LOCAL = WebhookPolicy.from_config(WebhookConfig(allow_hosts="127.0.0.1"))
# What a record holds that must never reach a log line.
CALLER = "+15550100"


def record(n: int, **extra: Any) -> dict[str, Any]:
    return {"call_id": f"call-{n}", "caller": CALLER, "slots": {"name": "Zoë"}, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ResultsServer:
    """A results server: answers each POST with the next of ``statuses`` (then 200)."""

    statuses: list[int] = field(default_factory=list)
    attempts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    accepted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refuse_if: Callable[[dict[str, Any]], bool] = lambda body: False

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key", "")
        body = await request.json()
        self.attempts.append((key, request.content_type, body))
        status = self.statuses.pop(0) if self.statuses else 200
        if self.refuse_if(body):
            status = 422
        if status < 300:
            self.accepted.append((key, body))
        return web.json_response({"status": status}, status=status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/results", self.handle)
        return app

    def keys(self) -> list[str]:
        return [key for key, _ in self.accepted]


async def serve(server: ResultsServer, port: int = 0) -> TestServer:
    test_server = TestServer(server.app(), host="127.0.0.1", port=port)
    await test_server.start_server()
    return test_server


@pytest.fixture
async def results_server() -> AsyncIterator[tuple[ResultsServer, str]]:
    server = ResultsServer()
    running = await serve(server)
    yield server, f"http://127.0.0.1:{running.port}/results"
    await running.close()


def settings(tmp_path: Path, **changes: Any) -> ResultsConfig:
    config = ResultsConfig(
        outbox=str(tmp_path / "outbox.sqlite"), retry_initial_s=0.05, retry_max_s=0.2
    )
    return replace(config, **changes)


def outbox_of(config: ResultsConfig, metrics: Metrics | None = None) -> ResultsOutbox:
    return ResultsOutbox(config, LOCAL, observer=metrics, rng=random.Random(7))


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {timeout_s:g} s: {check.__name__}")


async def drained(outbox: ResultsOutbox) -> bool:
    return all(counts == Backlog(0, 0) for counts in (await outbox.backlog()).values())


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def sample(metrics: Metrics, name: str, target: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"target": target})


# -- the decisions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "jitter", "expected"),
    [
        (0, 0.0, 0.0),
        (1, 0.0, 1.0),
        (2, 0.0, 2.0),
        (3, 0.0, 4.0),
        (9, 0.0, 256.0),
        (10, 0.0, 300.0),  # 512 capped
        (1, 1.0, 0.75),  # the most jitter takes a quarter off
        (10, 1.0, 225.0),
        (2, 0.5, 1.75),
        (10**9, 0.0, 300.0),  # no overflow
        (1, 7.0, 0.75),  # jitter outside 0..1 is clamped
    ],
)
def test_backoff_doubles_up_to_the_max_less_jitter(
    attempts: int, jitter: float, expected: float
) -> None:
    assert math.isclose(backoff_s(attempts, 1.0, 300.0, jitter), expected)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (301, "refused"),
        (400, "refused"),
        (401, "refused"),
        (404, "refused"),
        (413, "refused"),
        (422, "refused"),
    ],
)
def test_an_answer_is_delivered_retried_or_refused(status: int, expected: str) -> None:
    assert verdict(status) == expected


# -- delivery -----------------------------------------------------------------------------------


async def test_a_record_reaches_the_file_and_the_webhook_once_under_one_key(
    tmp_path: Path, results_server: tuple[ResultsServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, url = results_server
    file = tmp_path / "results.jsonl"
    metrics = Metrics()
    outbox = outbox_of(settings(tmp_path, file=str(file), webhook=url), metrics)
    await outbox.start()
    assert {task.get_name() for task in asyncio.all_tasks()} >= {"results-file", "results-webhook"}
    key = await outbox.put(record(1))
    await eventually(lambda: drained(outbox))
    await outbox.close()

    assert server.attempts == [(key, "application/json", {"key": key, **record(1)})]
    assert lines(file) == [{"key": key, **record(1)}]
    assert file.read_text(encoding="utf-8").endswith('"Zoë"}}\n')  # ensure_ascii=False
    for target in ("file", "webhook"):
        assert sample(metrics, "voicebot_results_delivered_total", target) == 1.0
        assert sample(metrics, "voicebot_results_retried_total", target) == 0.0
        assert sample(metrics, "voicebot_results_waiting", target) == 0.0
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("results-")]
    await outbox.close()  # idempotent
    assert CALLER not in caplog.text


async def test_a_results_server_that_refuses_connections_then_comes_up_gets_each_record_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    metrics = Metrics()
    outbox = outbox_of(settings(tmp_path, webhook=f"http://127.0.0.1:{port}/results"), metrics)
    await outbox.start()
    keys = [await outbox.put(record(n)) for n in range(3)]

    async def retried_twice() -> bool:
        return (sample(metrics, "voicebot_results_retried_total", "webhook") or 0) >= 2

    await eventually(retried_twice)
    assert sample(metrics, "voicebot_results_waiting", "webhook") == 3.0
    server = ResultsServer()
    running = await serve(server, port)
    try:
        await eventually(lambda: drained(outbox))
    finally:
        await outbox.close()
        await running.close()
    assert server.keys() == keys  # each once, oldest first
    assert sample(metrics, "voicebot_results_delivered_total", "webhook") == 3.0
    failures = [r for r in caplog.records if "failed (attempt" in r.getMessage()]
    assert failures and all(r.levelno == logging.WARNING for r in failures)
    assert keys[0] in failures[0].getMessage()  # the key, never the contents
    assert CALLER not in caplog.text and "call-0" not in caplog.text


async def test_503s_are_retried_with_the_same_key_until_accepted(
    tmp_path: Path, results_server: tuple[ResultsServer, str]
) -> None:
    server, url = results_server
    server.statuses = [503, 503, 429]
    metrics = Metrics()
    outbox = outbox_of(settings(tmp_path, webhook=url), metrics)
    await outbox.start()
    first = await outbox.put(record(1))
    second = await outbox.put(record(2))
    await eventually(lambda: drained(outbox))
    await outbox.close()
    # The oldest goes first or nothing does: the second waits behind the first's retries.
    assert [key for key, _, _ in server.attempts] == [first, first, first, first, second]
    assert server.keys() == [first, second]
    assert sample(metrics, "voicebot_results_retried_total", "webhook") == 3.0
    assert sample(metrics, "voicebot_results_delivered_total", "webhook") == 2.0


async def test_a_clock_set_back_does_not_hold_a_retry_back(tmp_path: Path) -> None:
    port = free_port()
    now = [1_000_000.0]
    config = settings(tmp_path, webhook=f"http://127.0.0.1:{port}/results")
    metrics = Metrics()
    outbox = ResultsOutbox(config, LOCAL, observer=metrics, clock=lambda: now[0])
    await outbox.start()
    key = await outbox.put(record(1))

    async def retried() -> bool:
        return sample(metrics, "voicebot_results_retried_total", "webhook") == 1.0

    await eventually(retried)  # due again at 1_000_000 + at most 0.05 s, by this clock
    now[0] -= 3600.0
    server = ResultsServer()
    running = await serve(server, port)
    try:
        await eventually(lambda: drained(outbox), timeout_s=2.0)
    finally:
        await outbox.close()
        await running.close()
    assert server.keys() == [key]


async def test_a_refused_record_is_parked_the_rest_go_on_and_the_next_start_sends_it(
    tmp_path: Path, results_server: tuple[ResultsServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, url = results_server
    server.refuse_if = lambda body: body.get("poison") is True
    metrics = Metrics()
    config = settings(tmp_path, webhook=url)
    outbox = outbox_of(config, metrics)
    await outbox.start()
    poison = await outbox.put(record(1, poison=True))
    good = await outbox.put(record(2))

    async def settled() -> bool:
        return (await outbox.backlog())["webhook"] == Backlog(waiting=0, refused=1)

    await eventually(settled)
    await outbox.close()
    assert server.keys() == [good]
    assert sample(metrics, "voicebot_results_refused", "webhook") == 1.0
    refusals = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(refusals) == 1 and poison in refusals[0].getMessage()
    assert "HTTP 422" in refusals[0].getMessage() and CALLER not in caplog.text

    server.refuse_if = lambda body: False  # the server fixed
    restarted = outbox_of(config)
    await restarted.start()
    await eventually(lambda: drained(restarted))
    await restarted.close()
    assert server.keys() == [good, poison]


async def test_a_new_outbox_over_the_same_file_delivers_what_the_last_one_left(
    tmp_path: Path, results_server: tuple[ResultsServer, str]
) -> None:
    server, url = results_server
    config = settings(tmp_path, webhook=f"http://127.0.0.1:{free_port()}/results")
    before = outbox_of(config)
    await before.start()
    keys = [await before.put(record(n)) for n in range(2)]
    await before.close()
    assert server.accepted == []

    after = outbox_of(replace(config, webhook=url))
    await after.start()
    await eventually(lambda: drained(after))
    await after.close()
    assert server.keys() == keys


async def test_lines_written_before_a_crash_are_not_written_again(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    config = settings(tmp_path, file=str(blocked / "results.jsonl"), retry_initial_s=60)
    before = outbox_of(config)
    await before.start()
    keys = [await before.put(record(n)) for n in range(3)]
    await before.close()  # all three wait: the file could not be written

    # The crash: the first two records appended, the third cut short, none deleted yet.
    file = tmp_path / "results.jsonl"
    written = [json.dumps({"key": k, **record(n)}, ensure_ascii=False) for n, k in enumerate(keys)]
    earlier = json.dumps({"key": "00000000-0000-0000-0000-000000000000", "call_id": "older"})
    file.write_text(f"{earlier}\n{written[0]}\n{written[1]}\n{written[2][:20]}", encoding="utf-8")

    after = outbox_of(replace(config, file=str(file)))
    await after.start()
    await eventually(lambda: drained(after))
    await after.close()
    assert [line["key"] for line in lines(file)] == [
        "00000000-0000-0000-0000-000000000000",
        *keys,
    ]


async def test_the_file_is_rotated_by_size_keeping_file_keep_old_ones(tmp_path: Path) -> None:
    file = tmp_path / "results.jsonl"
    config = settings(tmp_path, file=str(file), file_max_bytes=300, file_keep=2)
    outbox = outbox_of(config)
    await outbox.start()
    keys = []
    for n in range(12):  # about 100 bytes each: two or three to a file
        keys.append(await outbox.put(record(n, pad="x" * 20)))
        await eventually(lambda: drained(outbox))
    await outbox.close()

    files = [file.with_name("results.jsonl.2"), file.with_name("results.jsonl.1"), file]
    assert not file.with_name("results.jsonl.3").exists()
    for path in files:
        assert 0 < path.stat().st_size <= 300, path
    kept = [line["key"] for path in files for line in lines(path)]
    assert kept == keys[-len(kept) :]  # oldest first across the files, the oldest rotated away
    assert len(kept) < len(keys)


async def test_a_webhook_host_off_the_allow_list_is_refused_before_anything_is_sent(
    tmp_path: Path, results_server: tuple[ResultsServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, url = results_server
    listed = WebhookPolicy.from_config(WebhookConfig(allow_hosts="results.example"))
    with pytest.raises(ConfigError, match=r"results\.webhook: host 127\.0\.0\.1:\d+ is not in"):
        ResultsOutbox(settings(tmp_path, webhook=url), listed)
    open_policy = WebhookPolicy.from_config(WebhookConfig())
    with pytest.raises(ConfigError, match=r"results\.webhook: .* private address \(loopback\)"):
        ResultsOutbox(settings(tmp_path, webhook=url), open_policy)

    # A name is checked on the addresses it resolves to: localhost is loopback, not listed.
    by_name = url.replace("127.0.0.1", "localhost")
    outbox = ResultsOutbox(settings(tmp_path, webhook=by_name), open_policy)
    await outbox.start()
    await outbox.put(record(1))

    def refused() -> bool:
        return any("loopback" in r.getMessage() for r in caplog.records)

    async def check() -> bool:
        return refused()

    await eventually(check)
    assert (await outbox.backlog())["webhook"].waiting == 1  # kept, not dropped
    await outbox.close()
    assert server.attempts == []


async def test_a_second_process_on_the_same_outbox_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "LOCK_WAIT_S", 0.1)
    config = settings(tmp_path, file=str(tmp_path / "results.jsonl"))
    first = outbox_of(config)
    await first.start()
    second = outbox_of(config)
    with pytest.raises(
        ConfigError,
        match=r"results\.outbox: cannot open .*: database is locked \(another voicebot process",
    ):
        await second.start()
    await first.close()


async def test_put_refuses_what_is_not_json_before_storing_anything(tmp_path: Path) -> None:
    outbox = outbox_of(settings(tmp_path, file=str(tmp_path / "results.jsonl")))
    with pytest.raises(RuntimeError, match="not started"):
        await outbox.put(record(1))
    await outbox.start()
    with pytest.raises(ValueError, match='may not have a "key"'):
        await outbox.put({"key": "mine"})
    with pytest.raises(ValueError):
        await outbox.put({"latency_ms": float("nan")})
    with pytest.raises(TypeError):
        await outbox.put({"when": object()})
    assert await drained(outbox)
    await outbox.close()
    with pytest.raises(RuntimeError, match="closed"):
        await outbox.put(record(1))


async def test_without_targets_nothing_is_stored_and_no_outbox_is_made(tmp_path: Path) -> None:
    outbox = outbox_of(settings(tmp_path))
    await outbox.start()
    assert await outbox.put(record(1))
    await outbox.close()
    assert not (tmp_path / "outbox.sqlite").exists()


CHILD = """
import asyncio, sys
from voicebot.call.webhook import WebhookPolicy
from voicebot.config import ResultsConfig, WebhookConfig
from voicebot.server.results import ResultsOutbox

async def main():
    config = ResultsConfig(outbox=sys.argv[1], webhook=sys.argv[2], file=sys.argv[3],
                           retry_initial_s=60, retry_max_s=60)
    policy = WebhookPolicy.from_config(WebhookConfig(allow_hosts="127.0.0.1"))
    outbox = ResultsOutbox(config, policy)
    await outbox.start()
    print(await outbox.put({"call_id": "killed", "caller": "+15550100"}), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_record_put_before_sigkill_is_delivered_by_the_next_run(
    tmp_path: Path, results_server: tuple[ResultsServer, str]
) -> None:
    server, url = results_server
    file = tmp_path / "results.jsonl"
    config = settings(tmp_path, file=str(file), webhook=url)
    down = f"http://127.0.0.1:{free_port()}/results"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, config.outbox, down, str(file),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        async with asyncio.timeout(10):
            key = (await child.stdout.readline()).decode().strip()
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert len(key) == 36, key

    outbox = outbox_of(config)
    await outbox.start()
    await eventually(lambda: drained(outbox))
    await outbox.close()
    assert server.keys() == [key]
    assert [line["key"] for line in lines(file)] == [key]
