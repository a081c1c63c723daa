"""Typed config: defaults, the documented voicebot.toml, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.config import PLACEHOLDER_PASSWORD, Config, load_config
from voicebot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_voicebot_toml_documents_every_key_at_its_default() -> None:
    assert load_config(ROOT / "voicebot.toml", environ={}) == Config()
    text = (ROOT / "voicebot.toml").read_text()
    for section in ("ari", "media", "vad", "asr", "tts", "dialog", "http"):
        for key in vars(getattr(Config(), section)):
            assert f"\n{key} = " in text, f"{section}.{key} is not documented in voicebot.toml"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[ari]\nurl = "http://asterisk:8088"\npassword = "from-file"\n')
    config = load_config(
        path, environ={"VOICEBOT_ARI_PASSWORD": "from-env", "VOICEBOT_MEDIA_PORT_MIN": "40100"}
    )
    assert config.ari.url == "http://asterisk:8088"
    assert config.ari.password == "from-env"
    assert config.media.port_min == 40100


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[ari]\nurl = 5\n", {}, "ari.url: expected a string, got 5"),
        ("[ari]\npasword = 'x'\n", {}, "ari.pasword: unknown key"),
        ("[media]\nformat = 'opus'\n", {}, "media.format: 'opus' is not one of ulaw, alaw, slin16"),
        (
            "",
            {"VOICEBOT_MEDIA_PORT_MIN": "many"},
            "environment VOICEBOT_MEDIA_PORT_MIN → media.port_min: expected an integer",
        ),
        ("[nope]\nx = 1\n", {}, "nope: unknown key"),
        ("[ari\n", {}, "invalid TOML"),
        ('[ari]\nurl = "http://voicebot:s3cret@ast:8088"\n', {}, "ari.url: holds a user name"),
        ("", {"VOICEBOT_ARI_MODE": "listen"}, 'ari.mode: \'listen\' is not "connect" or "accept"'),
        (
            "",
            {"VOICEBOT_ARI_MODE": "accept", "VOICEBOT_ARI_LISTEN": "127.0.0.2"},
            "ari.listen: '127.0.0.2' is not HOST:PORT",
        ),
        ('[ari]\nmode = "accept"\nlisten = "h:99999"\n', {}, "ari.listen: 'h:99999' is not"),
        ("[ari]\nretry_initial_s = 0\n", {}, "ari.retry_initial_s: 0 must be at least 0.05"),
        ("[dialog]\nno_input_timeout_s = 0\n", {}, "dialog.no_input_timeout_s: 0 must be more"),
        ("", {"VOICEBOT_DIALOG_NO_INPUT_TIMEOUT_S": "inf"}, "dialog.no_input_timeout_s: inf must"),
        ("", {"VOICEBOT_ARI_RETRY_INITIAL_S": "nan"}, "ari.retry_initial_s: nan must be at"),
        ("[ari]\nretry_max_s = 0.1\n", {}, "ari.retry_max_s: 0.1 must be at least ari.retry_"),
        ("[asr]\ndecode_threads = -1\n", {}, "asr.decode_threads: -1 must be 0"),
    ],
)
def test_bad_config_names_what_is_wrong(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(path, environ=env)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", environ={})


def test_secrets_are_in_no_repr(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[ari]\npassword = "Zq7-file-secret"\n')
    config = load_config(
        path, environ={"VOICEBOT_ARI_PASSWORD": "Zq7-env-secret", "VOICEBOT_HTTP_TOKEN": "Tk9-tok"}
    )
    assert (config.ari.password, config.http.token) == ("Zq7-env-secret", "Tk9-tok")
    for text in (repr(config), repr(config.ari), repr(config.http), str(config)):
        assert "Zq7" not in text and "Tk9" not in text


def test_the_shipped_password_is_the_placeholder_run_refuses() -> None:
    # `voicebot run` refuses PLACEHOLDER_PASSWORD (test_cli.py); it must be what ships.
    assert Config().ari.password == PLACEHOLDER_PASSWORD
    assert load_config(ROOT / "voicebot.toml", environ={}).ari.password == PLACEHOLDER_PASSWORD


def test_a_password_written_into_the_ari_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(None, environ={"VOICEBOT_ARI_URL": "https://voicebot:s3cret@ast:8089/"})
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ari]\npassword = 4217\n", "ari.password: expected a string, got an int (a secret"),
        ("[http]\ntoken = 918273\n", "http.token: expected a string, got an int (a secret"),
    ],
)
def test_a_mistyped_secret_is_named_but_never_shown(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as info:
        load_config(path, environ={})
    assert "4217" not in str(info.value) and "918273" not in str(info.value)


def test_results_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[results]\nfile = "results.jsonl"\nwebhook = "https://results.example/calls"\n'
        "retry_max_s = 60\n"
    )
    config = load_config(
        path, environ={"VOICEBOT_RESULTS_FILE_KEEP": "2", "VOICEBOT_RESULTS_RETRY_INITIAL_S": "0.5"}
    )
    assert config.results.file == "results.jsonl"
    assert config.results.webhook == "https://results.example/calls"
    assert (config.results.file_keep, config.results.retry_initial_s) == (2, 0.5)
    assert config.results.retry_max_s == 60.0
    assert config.results.targets() == ("file", "webhook")
    assert Config().results.targets() == ()
    assert Config().results.outbox == ".state/results-outbox.sqlite"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[results]\nfile_max_bytes = 0\n", {}, "results.file_max_bytes: 0 must be at least 1"),
        ("[results]\nfile_keep = 0\n", {}, "results.file_keep: 0 must be at least 1"),
        ("[results]\nfile = 5\n", {}, "results.file: expected a string, got 5"),
        ('[results]\nwebhook = "ftp://x/y"\n', {}, "results.webhook: must be an http"),
        ('[results]\nwebhook = "https://"\n', {}, "results.webhook: must be an http"),
        ('[results]\nwebhook = "http://[::1"\n', {}, "results.webhook: must be an http"),
        ("", {"VOICEBOT_RESULTS_WEBHOOK_TIMEOUT_S": "0"}, "results.webhook_timeout_s: 0 must be"),
        ("", {"VOICEBOT_RESULTS_WEBHOOK_TIMEOUT_S": "nan"}, "results.webhook_timeout_s: nan"),
        ('[results]\noutbox = ""\n', {}, "results.outbox: must name a file"),
        ("[results]\nretry_initial_s = 0\n", {}, "results.retry_initial_s: 0 must be at least"),
        ("[results]\nretry_max_s = 0.5\n", {}, "results.retry_max_s: 0.5 must be finite and at"),
        ("", {"VOICEBOT_RESULTS_RETRY_MAX_S": "inf"}, "results.retry_max_s: inf must be finite"),
        ("", {"VOICEBOT_RESULTS_FILE_KEEP": "two"}, "RESULTS_FILE_KEEP → results.file_keep: exp"),
        ("[results]\nfiles = 'x'\n", {}, "results.files: unknown key"),
    ],
)
def test_bad_results_config_names_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path, environ=env)


def test_a_results_webhook_is_not_echoed_in_its_error() -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(None, environ={"VOICEBOT_RESULTS_WEBHOOK": "gopher://h/?token=Sx81"})
    assert "Sx81" not in str(refused.value)
