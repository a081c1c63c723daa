#!/usr/bin/env python3
"""Does the web console stay responsive with 500 calls in the history and 20 live calls?

One process, a temporary directory: a real call history (SQLite; 500 calls over two days,
replaying the transcripts and pcaps of tests/fixtures/captures), a fake controller with 20 live
calls whose transcripts grow while it runs, the status server on 127.0.0.1. An aiohttp client
on the same event loop times each console request with no live stream open and with 5 open,
and the live stream: first event, event size, events in 10 s, append-to-seen delay.
``--browser`` also times headless Chromium loading each page. Prints numbers, asserts nothing.

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
import shlex
import shutil
import sys
import tempfile
import time
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
DEMO, BANK = "demo-hours-goodbye", "bank-keys-balance"
SCRIPTS = {"demo": DEMO, "bank": BANK, "ru/demo": DEMO, "ru/bank": BANK}
ENDINGS = (
    [(CallResult.COMPLETED, EndReason.BOT_HANGUP)] * 14
    + [(CallResult.CALLER_HANGUP, EndReason.CALLER_HANGUP)] * 4
    + [(CallResult.ERROR, EndReason.ERROR), (CallResult.STOPPED, EndReason.CONSOLE)]
)
HISTORY_CALLS, LIVE_CALLS, STREAMS, CALLERS, LIVE_WINDOW_S = 500, 20, 5, 40, 10.0
APPEND_EVERY_S, APPENDS_PER_TICK, LIVE_LINES, LIVE_END_AT = 0.5, 3, (10, 30), 40
# Two disjoint sets of recordings, each longer than the console's cache of decoded audio:
# cycling through one, every request decodes its pcap again. One more copy stays cached.
COLD_SET = AUDIO_CACHE_CALLS + 1
CHROMIUM, CHROMEDRIVER, BROWSER_ROUNDS = "/usr/bin/chromium", "/usr/bin/chromedriver", 5
TOKEN = secrets.token_urlsafe(24)
LINES = {
    name: [json.loads(line) for line in (CAPTURES / f"{name}.jsonl").read_text().splitlines()]
    for name in (DEMO, BANK)
}
Appends = list[tuple[str, int, float]]  # call id, its transcript's lines after it, when


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(samples: list[float]) -> str:
    """p50, p95 and max (ms) as table columns."""
    if not samples:
        return f"{'–':>8}" * 3
    values = (percentile(samples, 0.5), percentile(samples, 0.95), max(samples))
    return "".join(f"{v:8.1f}" for v in values)


def size(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n:.0f} B"


def fill_history(
    history: CallHistory, library: ScriptLibrary, pcaps: dict[str, list[Path]], now: float
) -> list[str]:
    """Keep HISTORY_CALLS calls; for each demo recording copy, the id of a complete call."""
    rng = random.Random(25)
    callers = [f"+7495{rng.randrange(10**7):07d}" for _ in range(CALLERS)]
    measured: dict[int, str] = {}
    for n in range(HISTORY_CALLS):
        name = list(SCRIPTS)[n % len(SCRIPTS)]
        lines, (result, reason) = LINES[SCRIPTS[name]], rng.choice(ENDINGS)
        if result is CallResult.CALLER_HANGUP:
            lines = lines[: rng.randint(1, len(lines) - 1)]
        copies = pcaps[SCRIPTS[name]]
        copy = (n // len(SCRIPTS)) % len(copies)
        started, call_id = now - rng.uniform(60, 2 * 86400), f"bench-{n:03d}"
        turns = [line["latency_ms"] for line in lines if "latency_ms" in line]
        record = result_record(
            call_id=call_id, script_name=name, script=library.scripts[name], started=started,
            ended=started + lines[-1]["t"] + 2.0, outcome=result.value, end_reason=reason.value,
            caller_id=rng.choice(callers), called="100",
            path=list(dict.fromkeys(line["state"] for line in lines)),
            variables={"account": "4217"} if "bank" in name else {}, transcript=lines,
            turns=turns, recording=str(copies[copy]),
        )  # fmt: skip
        history.keep({"call_id": call_id, "caller": record["caller_id"], "script": name,
                      "started": started, "end_reason": reason.value, "result": result.value,
                      "transcript": lines, "turns": turns, "events": [], "rtp_port": 41000,
                      "rtp": {"packets_in": 900, "lost": 0}, "pacer": {"late": 0},
                      "recording": str(copies[copy])}, record)  # fmt: skip
        if name == "demo" and result is CallResult.COMPLETED:
            measured.setdefault(copy, call_id)
    return [measured[copy] for copy in sorted(measured)]


class LiveCall:
    """An active call as the console reads it, replaying a capture's lines 2.5 s apart."""

    def __init__(self, number: int, rng: random.Random, lines: int) -> None:
        self.id, self.outbound = f"live-{number:03d}", None
        self.script = list(SCRIPTS)[number % len(SCRIPTS)]
        self.caller = f"+7812{rng.randrange(10**7):07d}"
        self.started = time.time() - lines * 2.5
        self.session = SimpleNamespace(core=SimpleNamespace(state_name="main"))
        self.transcript: list[dict[str, Any]] = []
        for _ in range(lines):
            self.say()

    def say(self) -> None:
        replayed = LINES[SCRIPTS[self.script]]
        line = {**replayed[len(self.transcript) % len(replayed)], "t": 2.5 * len(self.transcript)}
        self.transcript.append(line)
        self.session.core.state_name = line["state"]

    def summary(self) -> dict[str, Any]:
        transcript = [dict(line) for line in self.transcript]  # as TranscriptLine.as_dict does
        return {"call_id": self.id, "caller": self.caller, "script": self.script,
                "started": self.started, "transcript": transcript}  # fmt: skip

    def stop(self, *_: Any, **__: Any) -> None:
        pass


async def grow(calls: dict[str, LiveCall], appends: Appends, rng: random.Random) -> None:
    """A line for APPENDS_PER_TICK calls every APPEND_EVERY_S on average; a call that reached
    LIVE_END_AT lines ends and another starts in its place."""
    turn, number = 0, len(calls)
    while True:
        # Jittered, so appends fall anywhere within the server's look interval.
        await asyncio.sleep(rng.uniform(0.5, 1.5) * APPEND_EVERY_S)
        for _ in range(APPENDS_PER_TICK):
            slot, turn = list(calls)[turn % len(calls)], turn + 1
            if len(calls[slot].transcript) >= LIVE_END_AT:
                calls[slot], number = LiveCall(number, rng, LIVE_LINES[0]), number + 1
                continue
            calls[slot].say()
            appends.append((calls[slot].id, len(calls[slot].transcript), time.perf_counter()))


@dataclass
class StreamStats:
    first_event_ms: float | None = None
    sizes: list[int] = field(default_factory=list)
    delays_ms: list[float] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)


async def read_live(client: aiohttp.ClientSession, url: str, appends: Appends,
                    stats: StreamStats) -> None:  # fmt: skip
    """Read the live stream until cancelled: its events, and when each append shows up."""
    start, cursor, buffer, waiting = time.perf_counter(), len(appends), b"", Appends()
    seen: dict[str, int] = {}  # transcript lines the page knows, per call
    async with client.get(url) as response:
        if response.status != 200:
            raise SystemExit(f"live stream: HTTP {response.status}")
        async for chunk in response.content.iter_any():
            now = time.perf_counter()
            *events, buffer = (buffer + chunk).split(b"\n\n")
            for event in (e for e in events if e.startswith(b"event: ")):
                name, _, data = event[len(b"event: ") :].partition(b"\ndata: ")
                if stats.first_event_ms is None:
                    stats.first_event_ms = (now - start) * 1000
                    stats.started.set()
                stats.sizes.append(len(event) + 2)
                body = json.loads(data)
                if name == b"calls":  # every call, when the stream opens
                    seen = {call["call_id"]: len(call["transcript"]) for call in body["active"]}
                elif name == b"call":  # one call that changed
                    seen[body["call_id"]] = len(body["transcript"])
                elif name == b"ended":
                    seen.pop(body["call_id"], None)
                waiting, cursor = waiting + appends[cursor:], len(appends)
                for call_id, lines, at in list(waiting):
                    if seen.get(call_id, 0) >= lines:
                        stats.delays_ms.append((now - at) * 1000)
                    if seen.get(call_id, 0) >= lines or call_id not in seen:  # shown, or ended
                        waiting.remove((call_id, lines, at))


# label, the path of each round, the JSON to POST (None: GET), one untimed request first
Probe = tuple[str, list[str], dict[str, Any] | None, bool]


def probes(calls: list[str], caller: str, rounds: int) -> list[Probe]:
    api = "/console/api"
    one = [f"{api}/history/{calls[n % len(calls)]}" for n in range(rounds)]
    cold = [
        [f"{api}/history/{calls[k + n % COLD_SET]}" for n in range(rounds)] for k in (0, COLD_SET)
    ]
    cached, search, same = f"{api}/history/{calls[2 * COLD_SET]}", f"POST {api}/history/search", [
        f"{api}/history/search"] * rounds  # fmt: skip
    return [
        ("GET  /console/  (the page)", ["/console/"] * rounds, None, False),
        (f"GET  {api}/calls", [f"{api}/calls"] * rounds, None, False),
        (f"{search}  first 50", same, {}, False),
        (f"{search}  caller filter", same, {"caller": caller}, False),
        (f"{search}  offset 450", same, {"offset": 450}, False),
        (f"GET  {api}/history/{{id}}", one, None, False),
        (f"GET  {api}/history/{{id}}/timeline.svg  (decodes the pcap)",
         [f"{path}/timeline.svg" for path in cold[0]], None, False),
        (f"GET  {api}/history/{{id}}/timeline.svg  (decoded)",
         [f"{cached}/timeline.svg"] * rounds, None, True),
        (f"GET  {api}/history/{{id}}/audio/both.wav  (first)",
         [f"{path}/audio/both.wav" for path in cold[1]], None, False),
        (f"GET  {api}/history/{{id}}/audio/both.wav  (cached)",
         [f"{cached}/audio/both.wav"] * rounds, None, True),
        (f"GET  {api}/scripts", [f"{api}/scripts"] * rounds, None, False),
        (f"GET  {api}/scripts/demo/graph.svg", [f"{api}/scripts/demo/graph.svg"] * rounds, None,
         False),
        (f"GET  {api}/health", [f"{api}/health"] * rounds, None, False),
    ]  # fmt: skip


async def measure(
    client: aiohttp.ClientSession, base: str, probe: Probe
) -> tuple[list[float], int]:
    """Each round's time (ms) and the response's size."""
    label, paths, body, warm = probe
    times, length = [], 0
    for n, path in enumerate([paths[0], *paths] if warm else paths):
        start = time.perf_counter()
        async with client.request("GET" if body is None else "POST", base + path, json=body) as r:
            length = len(answer := await r.read())
            if r.status != 200:
                raise SystemExit(f"{label}: HTTP {r.status}: {answer[:200]!r}")
        if n or not warm:
            times.append((time.perf_counter() - start) * 1000)
    return times, length


def browse(base: str, call_id: str) -> list[tuple[str, list[float]]] | str:
    """Each page's load time in headless Chromium, from a blank tab until its main content is
    there (run in a thread: Selenium blocks); a sentence when it cannot run."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        return f"skipped: no {', '.join(missing)} (scripts/install-system-deps.sh installs them)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import (
        presence_of_element_located as element_present,
    )
    from selenium.webdriver.support.wait import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                 "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    pages = [("live", ".live-call"), ("history", ".history-row"),
             (f"call/{call_id}", "#timeline svg .latency-bar"),
             ("scripts", "table.counts tbody tr")]  # fmt: skip
    try:
        driver.get(f"{base}/console/?token={TOKEN}")  # the session cookie
        results = []
        for route, selector in pages:
            times = []
            for _ in range(BROWSER_ROUNDS):
                driver.get("about:blank")
                start = time.perf_counter()
                driver.get(f"{base}/console/#/{route}")
                present = element_present((By.CSS_SELECTOR, selector))
                WebDriverWait(driver, 30, poll_frequency=0.01).until(present)
                times.append((time.perf_counter() - start) * 1000)
            results.append((f"{route.split('/')[0]:<9}{selector}", times))
        return results
    finally:
        driver.quit()


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((x.partition(":")[2].strip() for x in cpuinfo if x.startswith("model name")), "")
    return (f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable; {model}), load "
            f"{os.getloadavg()[0]:.2f}; {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, aiohttp {aiohttp.__version__}")  # fmt: skip


def rss() -> str:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return f"{status['VmRSS'].strip()} now, {status['VmHWM'].strip()} at most"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def bench(rounds: int, browser: bool) -> None:
    print(f"machine: {machine()}")
    print("server and client share one event loop in one process (blocking work in threads)")
    library = ScriptLibrary(ROOT / "prompts", "demo")
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        pcaps = {name: [Path(shutil.copy(CAPTURES / f"{name}.pcap", f"{tmp}/{name}-{k}.pcap"))
                        for k in range(2 * COLD_SET + 1 if name == DEMO else 1)]
                 for name in (DEMO, BANK)}  # fmt: skip
        history = await CallHistory.open(Path(tmp) / "history.sqlite", 10_000)
        start = time.perf_counter()
        measured = fill_history(history, library, pcaps, time.time())
        newest = await history.search(HistoryQuery(limit=1))  # after every write: one thread
        filled_s, caller = time.perf_counter() - start, newest.rows[0].caller[-4:]
        rng = random.Random(20)
        calls = {f"k{n}": LiveCall(n, rng, rng.randint(*LIVE_LINES)) for n in range(LIVE_CALLS)}
        controller = SimpleNamespace(
            metrics=Metrics(), calls=calls, recent=[], draining=False, outbound=None,
            scripts=library, health=lambda: {"active_calls": len(calls), "max_active": 50,
                                             "engines": {}, "history": history.status()},
        )  # fmt: skip
        app = status_app(controller, SimpleNamespace(connected=True), HttpConfig(token=TOKEN),  # type: ignore[arg-type]
                         ConsoleConfig(), history)  # fmt: skip
        runner = web.AppRunner(app, access_log=None)  # as voicebot.server.app runs it
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base, live = f"http://127.0.0.1:{runner.addresses[0][1]}", "/console/api/live"
        print(f"history: {HISTORY_CALLS} calls over 2 days (scripts {', '.join(SCRIPTS)}), kept "
              f"in {filled_s:.1f} s, {size((Path(tmp) / 'history.sqlite').stat().st_size)}; "
              f"recordings: copies of {DEMO}.pcap and {BANK}.pcap")  # fmt: skip
        print(f"live: {LIVE_CALLS} calls of {LIVE_LINES[0]}-{LIVE_LINES[1]} lines, a line for "
              f"{APPENDS_PER_TICK} of them every ~{APPEND_EVERY_S} s (the server looks every "
              f"{LIVE_INTERVAL_S} s; at {LIVE_END_AT} lines a call ends, a new one starts); "
              f"{rounds} rounds per request\n", flush=True)  # fmt: skip
        appends: Appends = []
        grower = asyncio.create_task(grow(calls, appends, rng))
        table = probes(measured, caller, rounds)
        auth, timeout = {"Authorization": f"Bearer {TOKEN}"}, aiohttp.ClientTimeout(total=None)
        try:
            async with aiohttp.ClientSession(headers=auth, timeout=timeout) as client:
                progress("timing the requests, no live stream open…")
                idle = [await measure(client, base, probe) for probe in table]
                progress(f"reading the live stream for {LIVE_WINDOW_S:.0f} s…")
                alone = StreamStats()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LIVE_WINDOW_S):
                        await read_live(client, base + live, appends, alone)
                progress(f"timing the requests, {STREAMS} live streams open…")
                streams = [StreamStats() for _ in range(STREAMS)]
                readers = [asyncio.create_task(read_live(client, base + live, appends, s))
                           for s in streams]  # fmt: skip
                await asyncio.gather(*(s.started.wait() for s in streams))
                busy = [await measure(client, base, probe) for probe in table]
                for reader in readers:
                    reader.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
                pages: list[tuple[str, list[float]]] | str = "not run (add --browser)"
                if browser:
                    progress("driving headless chromium…")
                    pages = await asyncio.to_thread(browse, base, measured[0])
        finally:
            grower.cancel()
            await runner.cleanup()
            await history.close()
    width = max(len(label) for label, *_ in table)
    print(f"{'request':<{width}} {'size':>9}   {'no stream open (ms)':^24}   "
          f"{f'{STREAMS} live streams open (ms)':^24}")  # fmt: skip
    print((f"{'':<{width}} {'':>9}   " + f"{'p50':>8}{'p95':>8}{'max':>8}   " * 2).rstrip())
    for (label, *_), (quiet, length), (loaded, _) in zip(table, idle, busy, strict=True):
        print(f"{label:<{width}} {size(length):>9}   {spread(quiet)}   {spread(loaded)}")
    print("(the first column runs first: its max includes first-use costs, e.g. SQLite's pages)")
    sizes = alone.sizes or [0]
    print(f"\nlive stream (GET {live}, {LIVE_CALLS} calls), one stream open")
    print(f"  first event after   {alone.first_event_ms or 0:.1f} ms")
    later = sizes[1:] or [0]  # after the first event (every call, when the stream opens)
    print(f"  first event         {size(sizes[0])} (every call)")
    print(f"  later events        mean {size(sum(later) / len(later))}, max {size(max(later))}")
    print(f"  in {LIVE_WINDOW_S:.0f} s              {len(alone.sizes)} events, {size(sum(sizes))}")
    print(f"  a line appended → seen by a client (ms){'lines':>13}{'p50':>8}{'p95':>8}{'max':>8}")
    busy_label = f"{STREAMS} open, during the requests (seen by one)"
    for label, delays in (("one stream open", alone.delays_ms), (busy_label, streams[0].delays_ms)):
        print(f"    {label:<48}{len(delays):5d}{spread(delays)}")
    if isinstance(pages, str):
        print(f"\nbrowser: {pages}")
    else:
        print(f"\nheadless chromium: {BROWSER_ROUNDS} loads per page, about:blank → selector "
              "present (ms)")  # fmt: skip
        print(f"  {'page     selector':<38}{'p50':>8}{'p95':>8}{'max':>8}")
        for label, times in pages:
            print(f"  {label:<38}{spread(times)}")
    print(f"\nprocess RSS (server and client): {rss()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="requests per row (default 30)")
    parser.add_argument("--browser", action="store_true", help="also time headless chromium")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else "python"
    print(f"command: {shlex.join([python, *sys.argv])}")
    asyncio.run(bench(args.rounds, args.browser))


if __name__ == "__main__":
    main()
