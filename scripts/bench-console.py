#!/usr/bin/env python3
"""Does the web console stay responsive with 500 calls in the history and 20 live calls?

Builds, in one process and a temporary directory: a real call history (SQLite, 500 calls over
the last two days, four of the shipped scripts, the real transcripts and recordings of
tests/fixtures/captures), a fake controller with 20 live calls whose transcripts grow while the
bench runs (a line for 3 calls every 0.5 s; a call that reaches 40 lines ends and another
starts), and the status server on 127.0.0.1 with a token. An aiohttp client on the same event
loop times each console request (p50 / p95 / max, response size) with no live stream open and
with 5 open, and the live stream itself: the first event, an event's size, events in 10 s, and
how long an appended transcript line takes to reach a client. ``--browser`` also times headless
Chromium loading each page until its main content is there. It prints numbers and asserts
nothing (docs/console.md quotes its output).

    .venv/bin/python scripts/bench-console.py [--rounds 30] [--browser]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicebot.call.results import result_record  # noqa: E402
from voicebot.config import ConsoleConfig, HttpConfig  # noqa: E402
from voicebot.dialog.library import ScriptLibrary  # noqa: E402
from voicebot.server.console.app import AUDIO_CACHE_CALLS, LIVE_INTERVAL_S  # noqa: E402
from voicebot.server.history import CallHistory, HistoryQuery  # noqa: E402
from voicebot.server.leg import CallResult, EndReason  # noqa: E402
from voicebot.server.metrics import Metrics  # noqa: E402
from voicebot.server.status import status_app  # noqa: E402

CAPTURES = ROOT / "tests" / "fixtures" / "captures"
# Script → the capture its calls replay; the demo capture has each answer's latency.
SCRIPTS = {"demo": "demo-hours-goodbye", "bank": "bank-keys-balance",
           "ru/demo": "demo-hours-goodbye", "ru/bank": "bank-keys-balance"}  # fmt: skip
OUTCOMES = [(CallResult.COMPLETED, EndReason.BOT_HANGUP)] * 14 + [
    (CallResult.CALLER_HANGUP, EndReason.CALLER_HANGUP)] * 4 + [
    (CallResult.ERROR, EndReason.ERROR), (CallResult.STOPPED, EndReason.CONSOLE)]  # fmt: skip
HISTORY_CALLS, LIVE_CALLS, STREAMS, CALLERS = 500, 20, 5, 40
LIVE_WINDOW_S, APPEND_EVERY_S, APPENDS_PER_TICK, LIVE_LINES, LIVE_END_AT = 10.0, 0.5, 3, (10, 30), 40
# Two disjoint sets of recordings, each one longer than the console's decoded-audio cache:
# cycling through one, every request decodes its pcap again.
COLD_SET = AUDIO_CACHE_CALLS + 1
DEMO_COPIES = 2 * COLD_SET + 1  # the last one for the "cached" rows
CHROMIUM, CHROMEDRIVER, BROWSER_ROUNDS = "/usr/bin/chromium", "/usr/bin/chromedriver", 5
BROWSER_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                 "--disable-dev-shm-usage")  # fmt: skip
TOKEN = secrets.token_urlsafe(24)
Appends = list[tuple[str, int, float]]  # call id, transcript lines after the append, when


def capture(name: str) -> list[dict[str, Any]]:
    text = (CAPTURES / f"{name}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


LINES = {name: capture(name) for name in set(SCRIPTS.values())}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(samples: list[float]) -> str:
    """p50, p95 and max, in ms, in table columns."""
    if not samples:
        return f"{'–':>8}{'–':>8}{'–':>8}"
    return "".join(f"{v:8.1f}" for v in (percentile(samples, 0.5), percentile(samples, 0.95),
                                         max(samples)))  # fmt: skip


def size(n: float) -> str:
    return f"{n / 1000:.1f} kB" if n >= 1000 else f"{n:.0f} B"


def fill_history(history: CallHistory, library: ScriptLibrary, pcaps: dict[str, list[Path]],
                 now: float) -> dict[int, str]:  # fmt: skip
    """Keep HISTORY_CALLS calls; the id of a complete demo call for each demo recording copy."""
    rng = random.Random(25)
    callers = [f"+7495{rng.randrange(10**7):07d}" for _ in range(CALLERS)]
    names = list(SCRIPTS)
    measured: dict[int, str] = {}
    for n in range(HISTORY_CALLS):
        name = names[n % len(names)]
        lines = LINES[SCRIPTS[name]]
        result, reason = rng.choice(OUTCOMES)
        if result is CallResult.CALLER_HANGUP:
            lines = lines[: rng.randint(1, len(lines) - 1)]
        copies = pcaps[SCRIPTS[name]]
        copy = (n // len(names)) % len(copies)
        started = now - rng.uniform(60, 2 * 86400)
        call_id = f"bench-{n:03d}"
        turns = [line["latency_ms"] for line in lines if "latency_ms" in line]
        record = result_record(
            call_id=call_id, script_name=name, script=library.scripts[name], started=started,
            ended=started + lines[-1]["t"] + 2.0, outcome=result.value, end_reason=reason.value,
            caller_id=rng.choice(callers), called="100",
            path=list(dict.fromkeys(line["state"] for line in lines)),
            variables={"account": "4217"} if "bank" in name else {}, transcript=lines,
            turns=turns, recording=str(copies[copy]),
        )  # fmt: skip
        summary = {"call_id": call_id, "caller": record["caller_id"], "script": name,
                   "started": started, "end_reason": reason.value, "result": result.value,
                   "transcript": lines, "turns": turns, "events": [], "rtp_port": 41000,
                   "rtp": {"packets_in": 900, "lost": 0}, "pacer": {"late": 0},
                   "recording": str(copies[copy])}  # fmt: skip
        history.keep(summary, record)
        if name == "demo" and result is CallResult.COMPLETED:
            measured.setdefault(copy, call_id)
    return measured


class LiveCall:
    """An active call as the console reads it, replaying a real capture's lines."""

    def __init__(self, number: int, rng: random.Random, lines: int) -> None:
        self.id = f"live-{number:03d}"
        self.script = list(SCRIPTS)[number % len(SCRIPTS)]
        self.caller = f"+7812{rng.randrange(10**7):07d}"
        self.started = time.time() - lines * 2.5
        self.outbound = None
        self.session = SimpleNamespace(core=SimpleNamespace(state_name="main"))
        self.transcript: list[dict[str, Any]] = []
        for _ in range(lines):
            self.say()

    def say(self) -> None:
        replayed = LINES[SCRIPTS[self.script]]
        line = dict(replayed[len(self.transcript) % len(replayed)])
        line["t"] = round(2.5 * len(self.transcript), 3)
        self.transcript.append(line)
        self.session.core.state_name = line["state"]

    def summary(self) -> dict[str, Any]:
        return {"call_id": self.id, "caller": self.caller, "script": self.script,
                "started": self.started, "transcript": [dict(x) for x in self.transcript]}  # fmt: skip

    def stop(self, *_: Any, **__: Any) -> None:
        pass


async def grow(calls: dict[str, LiveCall], appends: Appends, rng: random.Random) -> None:
    """A line for APPENDS_PER_TICK calls every APPEND_EVERY_S; a long call ends, another starts."""
    turn, number = 0, len(calls)
    while True:
        await asyncio.sleep(APPEND_EVERY_S)
        for _ in range(APPENDS_PER_TICK):
            slot = list(calls)[turn % len(calls)]
            turn += 1
            if len(calls[slot].transcript) >= LIVE_END_AT:
                calls[slot] = LiveCall(number, rng, LIVE_LINES[0])
                number += 1
                continue
            calls[slot].say()
            appends.append((calls[slot].id, len(calls[slot].transcript), time.perf_counter()))


@dataclass
class StreamStats:
    first_event_ms: float | None = None
    sizes: list[int] = field(default_factory=list)
    delays_ms: list[float] = field(default_factory=list)


async def read_live(session: aiohttp.ClientSession, url: str, appends: Appends,
                    stats: StreamStats) -> None:  # fmt: skip
    """Read the live stream until cancelled: its events, and when each append shows up."""
    start, cursor, buffer = time.perf_counter(), len(appends), b""
    waiting: Appends = []
    async with session.get(url) as response:
        if response.status != 200:
            raise SystemExit(f"live stream: HTTP {response.status}")
        async for chunk in response.content.iter_any():
            now = time.perf_counter()
            *events, buffer = (buffer + chunk).split(b"\n\n")
            for event in events:
                if not event.startswith(b"event: calls\n"):
                    continue  # a heartbeat
                if stats.first_event_ms is None:
                    stats.first_event_ms = (now - start) * 1000
                stats.sizes.append(len(event) + 2)
                active = json.loads(event.partition(b"\ndata: ")[2])["active"]
                seen = {call["call_id"]: len(call["transcript"]) for call in active}
                waiting += appends[cursor:]
                cursor = len(appends)
                for call_id, lines, at in list(waiting):
                    if seen.get(call_id, 0) >= lines:
                        stats.delays_ms.append((now - at) * 1000)
                    if seen.get(call_id, 0) >= lines or call_id not in seen:
                        waiting.remove((call_id, lines, at))


@dataclass(frozen=True)
class Probe:
    label: str
    path: Callable[[int], str]  # round → path
    body: dict[str, Any] | None = None  # POST this JSON when set
    warm: bool = False  # one request before the timed ones


async def measure(session: aiohttp.ClientSession, base: str, probe: Probe,
                  rounds: int) -> tuple[list[float], int]:  # fmt: skip
    async def once(n: int) -> int:
        method = "GET" if probe.body is None else "POST"
        async with session.request(method, base + probe.path(n), json=probe.body) as response:
            body = await response.read()
            if response.status != 200:
                raise SystemExit(f"{probe.label}: HTTP {response.status}: {body[:200]!r}")
            return len(body)

    if probe.warm:
        await once(0)
    times, length = [], 0
    for n in range(rounds):
        start = time.perf_counter()
        length = await once(n)
        times.append((time.perf_counter() - start) * 1000)
    return times, length


def probes(measured: dict[int, str], caller: str) -> list[Probe]:
    history = "/console/api/history"
    first = [measured[k] for k in range(COLD_SET)]
    second = [measured[k] for k in range(COLD_SET, 2 * COLD_SET)]
    cached, any_call = measured[2 * COLD_SET], list(measured.values())
    search = f"POST {history}/search"
    return [
        Probe("GET  /console/  (the page)", lambda n: "/console/"),
        Probe("GET  /console/api/calls", lambda n: "/console/api/calls"),
        Probe(f"{search}  first 50", lambda n: f"{history}/search", {}),
        Probe(f"{search}  caller filter", lambda n: f"{history}/search", {"caller": caller}),
        Probe(f"{search}  offset 450", lambda n: f"{history}/search", {"offset": 450}),
        Probe(f"GET  {history}/{{id}}", lambda n: f"{history}/{any_call[n % len(any_call)]}"),
        Probe(f"GET  {history}/{{id}}/timeline.svg  (decodes the pcap)",
              lambda n: f"{history}/{first[n % COLD_SET]}/timeline.svg"),
        Probe(f"GET  {history}/{{id}}/timeline.svg  (decoded)",
              lambda n: f"{history}/{cached}/timeline.svg", warm=True),
        Probe(f"GET  {history}/{{id}}/audio/both.wav  (first)",
              lambda n: f"{history}/{second[n % COLD_SET]}/audio/both.wav"),
        Probe(f"GET  {history}/{{id}}/audio/both.wav  (cached)",
              lambda n: f"{history}/{cached}/audio/both.wav", warm=True),
        Probe("GET  /console/api/scripts", lambda n: "/console/api/scripts"),
        Probe("GET  /console/api/scripts/demo/graph.svg",
              lambda n: "/console/api/scripts/demo/graph.svg"),
        Probe("GET  /console/api/health", lambda n: "/console/api/health"),
    ]  # fmt: skip


def browse(base: str, call_id: str) -> list[tuple[str, list[float]]] | str:
    """Each page's load time in headless Chromium, from a blank tab to its main content (run
    in a thread: Selenium blocks); a sentence when it cannot run."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        return (f"skipped: {', '.join(missing)} not found (scripts/install-system-deps.sh "
                "installs chromium and chromium-driver)")  # fmt: skip
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    pages = [("live", "live", ".live-call"), ("history", "history", ".history-row"),
             ("call", f"call/{call_id}", "#timeline svg .latency-bar"),
             ("scripts", "scripts", "table.counts tbody tr")]  # fmt: skip
    try:
        driver.get(f"{base}/console/?token={TOKEN}")
        results = []
        for name, route, selector in pages:
            times = []
            for _ in range(BROWSER_ROUNDS):
                driver.get("about:blank")
                start = time.perf_counter()
                driver.get(f"{base}/console/#/{route}")
                WebDriverWait(driver, 30, poll_frequency=0.01).until(
                    lambda d, css=selector: d.find_elements(By.CSS_SELECTOR, css)
                )
                times.append((time.perf_counter() - start) * 1000)
            results.append((f"{name:<9}{selector}", times))
        return results
    finally:
        driver.quit()


def machine() -> str:
    model = next((line.partition(":")[2].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())  # fmt: skip
    return (f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable, {model}), load "
            f"{os.getloadavg()[0]:.2f}; {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, aiohttp {aiohttp.__version__}")  # fmt: skip


def rss() -> str:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return f"{status['VmRSS'].strip()} now, {status['VmHWM'].strip()} at most"


async def bench(rounds: int, browser: bool) -> None:
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}")
    print("server and client share one event loop in one process (blocking work in threads)")
    library = ScriptLibrary(ROOT / "prompts", "demo")
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        pcaps = {name: [Path(shutil.copy(CAPTURES / f"{name}.pcap", f"{tmp}/{name}-{k}.pcap"))
                        for k in range(DEMO_COPIES if name.startswith("demo") else 1)]
                 for name in set(SCRIPTS.values())}  # fmt: skip
        history = await CallHistory.open(Path(tmp) / "history.sqlite", 10_000)
        start = time.perf_counter()
        measured = fill_history(history, library, pcaps, time.time())
        await history.search(HistoryQuery())  # after every write: one thread, in order
        filled_s = time.perf_counter() - start
        rng = random.Random(20)
        calls = {f"k{n}": LiveCall(n, rng, rng.randint(*LIVE_LINES)) for n in range(LIVE_CALLS)}
        controller = SimpleNamespace(
            metrics=Metrics(), calls=calls, recent=[], draining=False, outbound=None,
            scripts=library, health=lambda: {"active_calls": len(calls), "max_active": 50,
                                             "engines": {}, "history": history.status()},
        )  # fmt: skip
        http = HttpConfig(token=TOKEN)
        app = status_app(controller, SimpleNamespace(connected=True), http, ConsoleConfig(),  # type: ignore[arg-type]
                         history)  # fmt: skip
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        print(f"history: {HISTORY_CALLS} calls over 2 days, scripts {', '.join(SCRIPTS)}, written "
              f"in {filled_s:.1f} s ({size((Path(tmp) / 'history.sqlite').stat().st_size)}); "
              f"recordings: copies of {', '.join(f'{n}.pcap' for n in sorted(pcaps))}")
        print(f"live: {LIVE_CALLS} calls of {LIVE_LINES[0]}-{LIVE_LINES[1]} lines, a line for "
              f"{APPENDS_PER_TICK} of them every {APPEND_EVERY_S} s (the server looks every "
              f"{LIVE_INTERVAL_S} s); {rounds} rounds per request\n")
        appends: Appends = []
        grower = asyncio.create_task(grow(calls, appends, rng))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        caller = (await history.search(HistoryQuery(limit=1))).rows[0].caller[-4:]
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        try:
            async with aiohttp.ClientSession(headers=auth, timeout=timeout) as session:
                print("measuring requests with no live stream open…", file=sys.stderr)
                table = probes(measured, caller)
                idle = [await measure(session, base, probe, rounds) for probe in table]
                print(f"reading the live stream for {LIVE_WINDOW_S:.0f} s…", file=sys.stderr)
                alone = StreamStats()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LIVE_WINDOW_S):
                        await read_live(session, base + "/console/api/live", appends, alone)
                print(f"measuring requests with {STREAMS} live streams open…", file=sys.stderr)
                open_streams = [StreamStats() for _ in range(STREAMS)]
                readers = [asyncio.create_task(read_live(session, base + "/console/api/live",
                                                         appends, s)) for s in open_streams]  # fmt: skip
                while any(s.first_event_ms is None for s in open_streams):
                    await asyncio.sleep(0.05)
                busy = [await measure(session, base, probe, rounds) for probe in table]
                for reader in readers:
                    reader.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
                pages: list[tuple[str, list[float]]] | str = "not run (--browser)"
                if browser:
                    print("driving headless chromium…", file=sys.stderr)
                    pages = await asyncio.to_thread(browse, base, measured[0])
        finally:
            grower.cancel()
            await runner.cleanup()
            await history.close()
    width = max(len(probe.label) for probe in table)
    print(f"{'request':<{width}} {'size':>9}   {'no stream open (ms)':^24}   "
          f"{f'{STREAMS} live streams open (ms)':^24}")
    print(f"{'':<{width}} {'':>9}   {'p50':>8}{'p95':>8}{'max':>8}   {'p50':>8}{'p95':>8}{'max':>8}")
    for probe, (quiet, length), (loaded, _) in zip(table, idle, busy, strict=True):
        print(f"{probe.label:<{width}} {size(length):>9}   {spread(quiet)}   {spread(loaded)}")
    sizes = alone.sizes or [0]
    print(f"\nlive stream (GET /console/api/live, {LIVE_CALLS} calls)          p50     p95     max")
    print(f"  first event after (ms)                           {alone.first_event_ms or 0:8.1f}")
    print(f"  event size                                       mean {size(sum(sizes) / len(sizes))}"
          f", max {size(max(sizes))}")
    print(f"  events in {LIVE_WINDOW_S:.0f} s                                  {len(alone.sizes):8d}")
    print(f"  line appended → seen, alone (ms, {len(alone.delays_ms):3d} lines)  "
          f"{spread(alone.delays_ms)}")
    delays = open_streams[0].delays_ms
    print(f"  same, 1 of {STREAMS} streams during the requests ({len(delays):3d})  {spread(delays)}")
    if isinstance(pages, str):
        print(f"\nbrowser: {pages}")
    else:
        print(f"\nheadless chromium, {BROWSER_ROUNDS} loads per page from about:blank until the "
              "selector is present (ms)")
        print(f"  {'page     selector':<38}{'p50':>8}{'p95':>8}{'max':>8}")
        for label, times in pages:
            print(f"  {label:<38}{spread(times)}")
    print(f"\nprocess RSS (server and client): {rss()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30, help="requests per row (default 30)")
    parser.add_argument("--browser", action="store_true",
                        help="also time the pages in headless chromium (/usr/bin/chromium)")  # fmt: skip
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    asyncio.run(bench(args.rounds, args.browser))


if __name__ == "__main__":
    main()
