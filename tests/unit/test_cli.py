"""``voicebot run`` start-up: no real ARI password, no start; what it warns about. Each run
here stops at the scripts directory, before models or Asterisk, so nothing is started."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from voicebot.cli import main
from voicebot.config import PLACEHOLDER_PASSWORD
from voicebot.errors import EXIT_ERROR, EXIT_INVALID

SECRET = "Zq7-real-ari-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VOICEBOT_* of whoever runs the tests (a real password in their shell)."""
    for name in list(os.environ):
        if name.startswith("VOICEBOT_"):
            monkeypatch.delenv(name)


def run(tmp_path: Path, toml: str) -> int:
    config = tmp_path / "voicebot.toml"
    config.write_text(toml)
    # A scripts directory that is not there: the run gets no further than loading scripts.
    return main(["--config", str(config), "run", "--scripts", str(tmp_path / "no-scripts")])


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_placeholder_password_is_refused_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code = run(tmp_path, f'[ari]\npassword = "{PLACEHOLDER_PASSWORD}"\n')
    assert code == EXIT_ERROR  # not EXIT_INVALID: the scripts were not even looked at
    [message] = errors(caplog)
    assert f"ari.password is the placeholder {PLACEHOLDER_PASSWORD!r}" in message
    assert "VOICEBOT_ARI_PASSWORD" in message and "[ari]" in message


def test_the_default_password_is_the_placeholder_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert run(tmp_path, "") == EXIT_ERROR
    assert "ari.password is the placeholder" in errors(caplog)[0]


def test_an_empty_password_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_ARI_PASSWORD", "")
    assert run(tmp_path, "") == EXIT_ERROR
    assert "ari.password is empty" in errors(caplog)[0]


def test_a_real_password_from_the_environment_passes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As scripts/run-bot.sh and the e2e helpers start the bot: the file has the placeholder.
    monkeypatch.setenv("VOICEBOT_ARI_PASSWORD", SECRET)
    code = run(tmp_path, f'[ari]\npassword = "{PLACEHOLDER_PASSWORD}"\n')
    assert code == EXIT_INVALID  # got as far as the (missing) scripts directory
    assert "scripts directory not found" in errors(caplog)[0]
    assert SECRET not in caplog.text


def test_plain_http_to_another_machine_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_ARI_PASSWORD", SECRET)
    run(tmp_path, '[ari]\nurl = "http://pbx.example:8088"\n')
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ARI at pbx.example is reached over plain http://" in w for w in warnings)
    assert SECRET not in caplog.text


def test_https_and_loopback_are_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_ARI_PASSWORD", SECRET)
    run(tmp_path, '[ari]\nurl = "https://pbx.example:8089"\n')
    run(tmp_path, '[ari]\nurl = "http://127.0.0.1:8088"\n')
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_an_open_calls_endpoint_on_the_network_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_ARI_PASSWORD", SECRET)
    assert run(tmp_path, '[http]\nhost = "0.0.0.0"\n') == EXIT_ERROR
    (error,) = errors(caplog)
    assert error.startswith("http.host 0.0.0.0: the status server's /calls")
    assert "VOICEBOT_HTTP_TOKEN" in error
    caplog.clear()
    monkeypatch.setenv("VOICEBOT_HTTP_TOKEN", "t0ken")
    run(tmp_path, '[http]\nhost = "0.0.0.0"\n')  # gets as far as the scripts
    assert "VOICEBOT_HTTP_TOKEN" not in caplog.text


def test_a_worker_listening_beyond_this_machine_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_ARI_PASSWORD", SECRET)
    run(tmp_path, '[ari]\nmode = "accept"\nlisten = "192.0.2.11:8765"\nurl = "http://pbx:8088"\n')
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # Its per-call sockets are the risk; ari.url is not used by a worker.
    assert any("ari.listen 192.0.2.11:8765" in w and "unencrypted" in w for w in warnings)
    assert not any("ARI at pbx" in w for w in warnings)
    caplog.clear()
    run(tmp_path, '[ari]\nmode = "accept"\nlisten = "127.0.0.2:8765"\n')
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
