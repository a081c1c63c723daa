#!/usr/bin/env python3
"""A campaign through the sandbox Asterisk: how fast the dialler gets through its contacts,
what the bot's CPU does meanwhile, that no contact is lost, and how soon each person hears the
robot after their "hello".

Starts its own bot (ARI app voicebot-out, scripts from tests/fixtures/outbound) whose
outbound.endpoint is the sandbox's [callees] context, loads N contacts (numbers 5553000...: a
person who says Allison's "hello", listens 6 s and hangs up) and waits until every contact has
its final outcome. Measured:

  calls per minute   answered calls / minutes from the campaign's start to its last outcome
  CPU                the bot process's user+system time / wall time (100 % = one core)
  lost               contacts without a final outcome, or not answered, or called twice
  hello → robot      in each callee's own recording (MixMonitor, what the person heard): the
                     end of their "hello" → the robot's first voiced frame (20 ms RMS)
  AMD                the verdicts the calls got

Needs the sandbox: `scripts/asterisk-sandbox.sh start` (or `make asterisk`) first.

    .venv/bin/python scripts/bench-dialler.py                   # 100 contacts, 8 at once
    .venv/bin/python scripts/bench-dialler.py --contacts 20 --concurrent 4
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voicebot.media.levels import is_voiced  # noqa: E402
from voicebot.tools.callprobe import start_sandbox_bot  # noqa: E402
from voicebot.tools.sip import read_wav_8k  # noqa: E402

HTTP_PORT = 18103
LOG = REPO / ".state" / "asterisk" / "asterisk.log"
MONITOR = REPO / ".state" / "asterisk" / "root" / "var" / "spool" / "asterisk" / "monitor"
FIRST_NUMBER = 5553000
FRAME = 160  # 20 ms at 8 kHz
# Gaps inside one utterance ("hel-lo") are shorter than this; the robot starts after a longer one.
UTTERANCE_GAP_S = 0.2


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def voiced_runs(path: Path) -> list[tuple[float, float]]:
    """The recording's voiced stretches (start, end) in seconds, gaps under UTTERANCE_GAP_S
    joined."""
    audio = read_wav_8k(path)
    frames = audio[: audio.size // FRAME * FRAME].reshape(-1, FRAME)
    voiced = [i * 0.02 for i, frame in enumerate(frames) if is_voiced(frame)]
    runs: list[tuple[float, float]] = []
    for t in voiced:
        if runs and t - runs[-1][1] <= UTTERANCE_GAP_S:
            runs[-1] = (runs[-1][0], t + 0.02)
        else:
            runs.append((t, t + 0.02))
    return runs


def hello_to_robot_ms(path: Path) -> float | None:
    runs = voiced_runs(path)
    if len(runs) < 2:
        return None
    return (runs[1][0] - runs[0][1]) * 1000


def window_now() -> str:
    now = datetime.now(UTC)
    start = max(now - timedelta(hours=2), now.replace(hour=0, minute=0))
    end = min(now + timedelta(hours=3), now.replace(hour=23, minute=59))
    return f"{start:%H:%M}-{end:%H:%M}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--calls-per-second", type=float, default=1.0, help="(outbound default)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait at most")
    args = parser.parse_args()
    print(f"$ {' '.join(sys.argv)}")
    work = Path(tempfile.mkdtemp(prefix="bench-dialler-"))
    env = {
        "VOICEBOT_ARI_APP": "voicebot-out",
        "VOICEBOT_MEDIA_PORT_MIN": "43100",
        "VOICEBOT_MEDIA_PORT_MAX": "43299",
        "VOICEBOT_DIALOG_SCRIPTS_DIR": str(REPO / "tests" / "fixtures" / "outbound"),
        "VOICEBOT_DIALOG_DEFAULT_SCRIPT": "parcel",
        "VOICEBOT_OUTBOUND_ENDPOINT": "Local/{number}@callees/n",
        "VOICEBOT_OUTBOUND_MAX_ACTIVE": str(args.concurrent),
        "VOICEBOT_OUTBOUND_CALLS_PER_SECOND": str(args.calls_per_second),
        "VOICEBOT_OUTBOUND_INBOUND_RESERVE": "0",
        "VOICEBOT_OUTBOUND_STORE": str(work / "campaigns.sqlite"),
        "VOICEBOT_CALLS_MAX_ACTIVE": str(args.concurrent),
    }
    contacts = work / "contacts.csv"
    with contacts.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["number", "first_name"])
        for i in range(args.contacts):
            writer.writerow([str(FIRST_NUMBER + i), "Sam"])
    log_mark = LOG.stat().st_size if LOG.exists() else 0
    bot = start_sandbox_bot(REPO, env, work / "voicebot.log", HTTP_PORT, "bench-dialler")
    voicebot = [str(REPO / ".venv" / "bin" / "voicebot")]
    full_env = {**os.environ, **env}
    try:
        cpu0, wall0 = cpu_seconds(bot.pid), time.monotonic()
        started = subprocess.run(
            [*voicebot, "campaign", "start", str(contacts), "--script", "parcel", "--name",
             "bench", "--window", window_now(), "--days", "mon-sun"],
            env=full_env, cwd=REPO, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if started.returncode != 0:
            raise SystemExit(f"campaign start failed: {started.stderr}")
        peak = 0
        rows: list[dict[str, object]] = []
        while time.monotonic() - wall0 < args.timeout:
            status = subprocess.run([*voicebot, "campaign", "export", "bench", "--format",
                                     "jsonl"], env=full_env, cwd=REPO, capture_output=True,
                                    text=True, check=True)  # fmt: skip
            rows = [json.loads(line) for line in status.stdout.splitlines()]
            with open(work / "voicebot.log", errors="replace") as log:
                text = log.read()
            active = len(re.findall(r"calling line", text)) - sum(
                1 for r in rows if r["status"] != "pending"
            )
            peak = max(peak, active)
            if all(r["status"] != "pending" for r in rows):
                break
            time.sleep(1.0)
        wall = time.monotonic() - wall0
        cpu = cpu_seconds(bot.pid) - cpu0
    finally:
        bot.terminate()
        bot.wait(timeout=30)
    outcomes: dict[str, int] = {}
    for row in rows:
        outcomes[str(row["status"])] = outcomes.get(str(row["status"]), 0) + 1
    answered = outcomes.get("answered", 0)
    twice = [r["number"] for r in rows if r["attempts"] != 1]
    lost = [r["number"] for r in rows if r["status"] != "answered"]
    verdicts: dict[str, int] = {}
    for row in rows:
        verdicts[str(row["amd"])] = verdicts.get(str(row["amd"]), 0) + 1
    log_text = LOG.read_text(errors="replace")[log_mark:]
    names = dict.fromkeys(re.findall(r"recording=(callee-5553\d+-[\w;.-]+?\.wav)", log_text))
    latencies = [ms for name in names if (ms := hello_to_robot_ms(MONITOR / name)) is not None]
    print(
        f"contacts {len(rows)}, {args.concurrent} calls at once at most, "
        f"{args.calls_per_second:g} new calls/s at most"
    )
    print(f"outcomes: {outcomes}; AMD verdicts: {verdicts}")
    print(f"lost (not answered): {len(lost)}; called more than once: {len(twice)}")
    print(
        f"wall {wall:.0f} s: {answered / wall * 60:.1f} answered calls per minute; "
        f"peak calls at once ~{peak}"
    )
    print(
        f"bot CPU: {cpu:.0f} s over {wall:.0f} s = {cpu / wall * 100:.0f} % of one core "
        f"({os.cpu_count()} cores)"
    )
    if latencies:
        print(
            f"hello → robot's first voiced frame (callee's recording, n={len(latencies)}): "
            f"p50 {statistics.median(latencies):.0f} ms, p95 {pct(latencies, 0.95):.0f} ms, "
            f"max {max(latencies):.0f} ms"
        )
    print(f"(work files in {work})")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
