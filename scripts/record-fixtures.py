#!/usr/bin/env python3
"""Re-record the real-call captures in tests/fixtures/captures/ (pcap + JSONL transcript).

Each fixture is a real call: sipp dials the sandbox Asterisk and speaks Allison's recorded
words (tests/fixtures/audio) or sends RFC 2833 keys; a `voicebot run` started here answers
with recording on, and its recording of the call is copied into the fixtures directory.

    scripts/asterisk-sandbox.sh start          # if it is not running
    .venv/bin/python scripts/record-fixtures.py [NAME ...]

Stop any other bot first (`make stop` or Ctrl-C on `make run`): two bots on the same ARI
application would share the calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voicebot.call.recording import CALLER_MAC  # noqa: E402
from voicebot.capture.pcap import read_pcap  # noqa: E402
from voicebot.tools.sip import (  # noqa: E402
    Dtmf,
    Pause,
    Play,
    Step,
    WaitForBye,
    place_call,
    read_wav_8k,
)

CAPTURES = REPO / "tests" / "fixtures" / "captures"
AUDIO = REPO / "tests" / "fixtures" / "audio"
HTTP_PORT = 18189
RATE = 8000


def silence(seconds: float) -> Play:
    """A phone that keeps sending while the caller is quiet (most do)."""
    return Play(np.zeros(round(seconds * RATE), dtype=np.int16))


def word(name: str) -> Play:
    return Play(read_wav_8k(AUDIO / f"{name}.wav"))


# name → (extension, what the caller does)
FIXTURES: dict[str, tuple[str, Callable[[], list[Step]]]] = {
    # Demo script: "hours", then "goodbye"; the phone sends (silent) audio all along.
    "demo-hours-goodbye": (
        "100",
        lambda: [silence(8.0), word("hours"), silence(7.5), word("goodbye"), WaitForBye(20)],
    ),
    # Bank script by keys only; the phone sends nothing between its keys, as sipp does.
    "bank-keys-balance": (
        "102",
        lambda: [
            *(Pause(7.0), Dtmf("1"), Pause(4.5), Dtmf("4217")),
            *(Pause(5.5), Dtmf("1"), WaitForBye(25)),
        ],
    ),
}


def _get(path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}{path}", timeout=5) as response:
        return dict(json.loads(response.read()))


def _wait(condition: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"record-fixtures: timed out waiting for {what}")
        time.sleep(0.25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(FIXTURES)}")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in FIXTURES]
    if unknown:
        parser.error(f"unknown fixture(s) {', '.join(unknown)} (have: {', '.join(FIXTURES)})")
    password = subprocess.run(
        [str(REPO / "scripts" / "asterisk-sandbox.sh"), "password"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="record-fixtures-") as tmp:
        recordings = Path(tmp) / "recordings"
        env = dict(
            os.environ,
            VOICEBOT_ARI_PASSWORD=password,
            VOICEBOT_HTTP_PORT=str(HTTP_PORT),
            VOICEBOT_MEDIA_PORT_MIN="42100",
            VOICEBOT_MEDIA_PORT_MAX="42199",
            VOICEBOT_RECORD_ENABLED="true",
            VOICEBOT_RECORD_DIR=str(recordings),
        )
        log = (Path(tmp) / "voicebot.log").open("w")
        bot = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "voicebot"), "run"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait(lambda: bool(_get("/health")["ari_connected"]), 120, "the bot to connect")
            for name in args.names or list(FIXTURES):
                extension, steps = FIXTURES[name]
                before = set(recordings.glob("*.pcap")) if recordings.exists() else set()
                result = asyncio.run(
                    place_call(
                        extension=extension, steps=steps(), workdir=Path(tmp) / name,
                        timeout_s=120,
                    )
                )  # fmt: skip
                _wait(lambda: _get("/health")["active_calls"] == 0, 30, "the call to end")
                (pcap,) = set(recordings.glob("*.pcap")) - before
                for suffix in (".pcap", ".jsonl"):
                    shutil.copyfile(pcap.with_suffix(suffix), CAPTURES / f"{name}{suffix}")
                datagrams = read_pcap(CAPTURES / f"{name}.pcap")
                caller = sum(d.link_src == CALLER_MAC for d in datagrams)
                size = (CAPTURES / f"{name}.pcap").stat().st_size
                print(
                    f"{name}: extension {extension}, hung up by {result.hangup_by}; "
                    f"{len(datagrams)} packets ({caller} from the caller), {size // 1024} KiB"
                )
                transcript = (CAPTURES / f"{name}.jsonl").read_text().splitlines()
                for line in transcript:
                    entry = json.loads(line)
                    print(f"    {entry['who']:>6}: {entry['text']}")
        finally:
            bot.terminate()
            bot.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
