"""`voicebot replay` builds its call as `voicebot run` does: the config's ``[webhooks]`` policy
applies, and a webhook to a host outside ``allow_hosts`` fails with the live call's reason."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.support.controller import harness
from tests.support.doubles import ListAsr, ToneTts
from voicebot import runtime
from voicebot.call import SpeechServices
from voicebot.cli import main
from voicebot.config import Config, WebhookConfig
from voicebot.dialog.model import Script

CAPTURE = Path(__file__).resolve().parents[2] / "fixtures" / "captures" / "demo-hours-goodbye.pcap"
ALLOWED = "api.example"
# Nothing listens there: a request that went out would fail with another reason.
URL = "http://127.0.0.1:9/orders"
SCRIPT = f"""\
start: lookup
states:
  lookup:
    webhook:
      url: "{URL}"
      goto: found
      on_error: {{say: "The shop cannot be reached.", hangup: true}}
  found:
    say: "Found it."
    hangup: true
"""
FAILED = re.compile(r"call \S+: webhook [A-Z]+ http://127\.0\.0\.1:9 failed: (.*)")


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    found = (FAILED.fullmatch(r.getMessage()) for r in caplog.records)
    return [m.group(1) for m in found if m is not None]


async def test_a_replay_fails_a_webhook_outside_allow_hosts_as_a_live_call_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "shop.yaml").write_text(SCRIPT)
    caplog.set_level(logging.INFO, logger="voicebot")

    async with harness([], scripts_dir=scripts, default="shop",
                       webhooks=WebhookConfig(allow_hosts=ALLOWED)) as h:  # fmt: skip
        async with h.call():
            await h.wait_until(lambda: any("cannot be reached" in t for t in h.tts.spoken))
    live = failures(caplog)
    assert live == ["host 127.0.0.1:9 is not in webhooks.allow_hosts"]
    caplog.clear()

    async def doubles(
        config: Config, scripts: Mapping[str, Script], default: str, models_dir: Path
    ) -> SpeechServices:
        return SpeechServices(ListAsr([]), ToneTts(seconds_per_char=0.001))

    async def no_warming(services: SpeechServices, scripts: Iterable[Script]) -> None:
        pass

    # The real engines (and so their prompt cache) are what this test leaves out of a replay.
    monkeypatch.setattr(runtime, "load_services", doubles)
    monkeypatch.setattr(runtime, "warm_prompts", no_warming)
    config = tmp_path / "voicebot.toml"
    config.write_text(f'[webhooks]\nallow_hosts = "{ALLOWED}"\n')
    shop = str(scripts / "shop.yaml")
    out = tmp_path / "out"
    argv = ["--config", str(config), "replay", str(CAPTURE), "--script", shop, "--out", str(out)]
    code = await _run_cli(argv)
    assert code == 0
    assert failures(caplog) == live
    transcript = (out / "transcript.jsonl").read_text()
    assert "The shop cannot be reached." in transcript


async def _run_cli(argv: list[str]) -> int:
    """``voicebot ...`` runs its own event loop: in a thread, away from the test's."""
    return await asyncio.to_thread(main, argv)
