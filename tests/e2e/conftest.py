"""End-to-end fixtures: a real Asterisk (scripts/asterisk-sandbox.sh) and its credentials.

Tests using the ``asterisk`` fixture are marked ``asterisk`` automatically. The sandbox
needs root (debootstrap, chroot, mount, packet capture); without it the tests FAIL rather
than skip, so CI can never pass by silently not running them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[2]
SANDBOX = REPO / "scripts" / "asterisk-sandbox.sh"
LOG_FILE = REPO / ".state" / "asterisk" / "asterisk.log"


class AsteriskSandbox(NamedTuple):
    """Unpacks as ``(ari_url, user, password)``; also offers the CLI and the log."""

    ari_url: str
    user: str
    password: str

    def cli(self, command: str, timeout: float = 15) -> str:
        """Run an Asterisk CLI command (``asterisk -rx``) and return its output."""
        done = subprocess.run(
            [str(SANDBOX), "cli", command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r} failed: {done.stderr or done.stdout}")
        return done.stdout

    def log_text(self) -> str:
        return LOG_FILE.read_text(errors="replace") if LOG_FILE.exists() else ""


def _sandbox(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SANDBOX), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AsteriskSandbox]:
    if os.geteuid() != 0:
        pytest.fail(
            "the Asterisk e2e tests need root (debootstrap, chroot, mount, packet capture); "
            "run them as root, e.g. `sudo make test`"
        )
    missing = [tool for tool in ("debootstrap", "sipp", "dumpcap") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run scripts/install-system-deps.sh "
            "(debootstrap, sip-tester, tshark)"
        )
    was_running = _sandbox("status", timeout=10).returncode == 0
    started = _sandbox("start", timeout=900)
    if started.returncode != 0:
        pytest.fail("scripts/asterisk-sandbox.sh start failed:\n" + started.stdout + started.stderr)
    password = _sandbox("password", timeout=10).stdout.strip()
    try:
        yield AsteriskSandbox("http://127.0.0.1:8088", "voicebot", password)
    finally:
        # Leave a sandbox that was already running as it was; stop the one we started
        # (unless VOICEBOT_KEEP_ASTERISK=1, handy while iterating on tests).
        if not was_running and os.environ.get("VOICEBOT_KEEP_ASTERISK") != "1":
            _sandbox("stop", timeout=60)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "asterisk" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.asterisk)


class RunningBot(NamedTuple):
    """A real ``voicebot run`` process answering calls on the sandbox Asterisk."""

    process: subprocess.Popen[str]
    status_url: str
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.status_url + path, timeout=5) as response:
            return dict(json.loads(response.read()))


BOT_HTTP_PORT = 18089


def bot_environment(sandbox: AsteriskSandbox, **overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VOICEBOT_ARI_URL=sandbox.ari_url,
        VOICEBOT_ARI_USER=sandbox.user,
        VOICEBOT_ARI_PASSWORD=sandbox.password,
        VOICEBOT_HTTP_PORT=str(BOT_HTTP_PORT),
        VOICEBOT_MEDIA_PORT_MIN="42000",
        VOICEBOT_MEDIA_PORT_MAX="42099",
        # The example scripts' web service (test_scripts.py serves it): a loopback address,
        # which webhooks reach only when it is listed.
        VOICEBOT_WEBHOOKS_ALLOW_HOSTS="127.0.0.1:18099",
    )
    env.update(overrides)
    return env


def start_bot(env: dict[str, str], log_path: Path) -> subprocess.Popen[str]:
    log = log_path.open("w")
    return subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "voicebot"), "run"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def run_bot(
    env: dict[str, str], log_path: Path, http_port: int
) -> Generator[RunningBot, None, None]:
    """Start ``voicebot run``, wait until it is connected to ARI, stop it afterwards."""
    process = start_bot(env, log_path)
    running = RunningBot(process, f"http://127.0.0.1:{http_port}", log_path)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"voicebot run exited with {process.returncode}:\n{running.log_text()}")
        try:
            if running.get("/health")["ari_connected"]:
                break
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("voicebot run did not become healthy in 120 s:\n" + running.log_text())
        time.sleep(0.25)
    try:
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def bot(
    asterisk: AsteriskSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBot]:
    """The bot most real-call tests call; it records every call (tests/e2e/test_recording.py
    replays them), which also keeps recording exercised by every kind of call."""
    workdir = tmp_path_factory.mktemp("bot")
    env = bot_environment(
        asterisk, VOICEBOT_RECORD_ENABLED="true", VOICEBOT_RECORD_DIR=str(workdir / "recordings")
    )
    yield from run_bot(env, workdir / "voicebot.log", BOT_HTTP_PORT)
