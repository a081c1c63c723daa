"""End-to-end fixtures: a real Asterisk (scripts/asterisk-sandbox.sh) and its credentials.

Tests using the ``asterisk`` fixture are marked ``asterisk`` automatically. The sandbox
needs root (debootstrap, chroot, mount, packet capture); without it the tests FAIL rather
than skip, so CI can never pass by silently not running them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

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
