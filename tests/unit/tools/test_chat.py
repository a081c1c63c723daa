"""``voicebot chat``: the dialog engine in a terminal, with real webhook calls."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from voicebot.cli import main
from voicebot.config import WebhookConfig
from voicebot.dialog.engine import (
    CallWebhook,
    Hangup,
    Heard,
    KeyPressed,
    NoInput,
    Recognized,
    SlotFilled,
    Transfer,
)
from voicebot.dialog.model import Script
from voicebot.dialog.parser import load_script
from voicebot.tools.chat import chat_variables, describe, parse_input, run_chat

ROOT = Path(__file__).resolve().parents[3]

BANK = """\
name: Chat test
start: main
defaults:
  no_input_timeout: 5s
  max_retries: 2
states:
  main:
    say: "Hello {caller_id}, you called {called}. Say balance or press 1, operator or press 0."
    expect:
      balance: {phrases: ["balance", "check my balance"], dtmf: "1", goto: account}
      operator: {phrases: ["operator"], dtmf: "0", goto: operator}
  account:
    say: "Please say or key your four digit account number."
    collect: {slot: account, type: digits, length: 4, goto: lookup}
  lookup:
    say: "One moment."
    webhook:
      url: "API_URL/balance?branch={channel.BRANCH}"
      method: POST
      body: {account: "{account}", caller: "{caller_id}"}
      save_as: result
      timeout: TIMEOUT
      goto: tell
      on_error: {say: "Sorry, the balance service is not available.", goto: operator}
  tell:
    say: "Account {account|digits} has a balance of {result.balance} dollars. Goodbye."
    hangup: true
  operator:
    say: "Connecting you to an operator."
    transfer: {context: voicebot-transfer, extension: operator}
"""


@dataclass
class BankApi:
    """An in-process HTTP server standing in for a script's webhook."""

    url: str
    requests: list[Any] = field(default_factory=list)
    mode: str = "ok"  # ok | error | slow | garbage


@pytest.fixture
async def api() -> AsyncIterator[BankApi]:
    state = BankApi(url="")

    async def balance(request: web.Request) -> web.StreamResponse:
        state.requests.append(await request.json())
        if state.mode == "error":
            return web.Response(status=500, text="boom")
        if state.mode == "slow":
            await asyncio.sleep(1)
        if state.mode == "garbage":
            return web.Response(text="<html>not json</html>")
        return web.json_response({"balance": 42.5})

    app = web.Application()
    app.router.add_post("/balance", balance)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


# The discard port: nothing listens.
DEAD_URL = "http://127.0.0.1:9"
# The test's web services listen on loopback, which webhooks reach only when it is listed.
LOOPBACK = WebhookConfig(allow_hosts="127.0.0.1")


def bank_script(tmp_path: Path, timeout: str = "2s", api: str = DEAD_URL) -> Path:
    """The bank script calling ``api`` (a webhook's host is the script's own text)."""
    path = tmp_path / "bank.yaml"
    path.write_text(BANK.replace("TIMEOUT", timeout).replace("API_URL", api))
    return path


async def chat(
    script: Script | Path,
    lines: list[str],
    webhooks: WebhookConfig | None = LOOPBACK,
    **variables: str,
) -> tuple[int, str, list[str]]:
    """Run a chat (input echoed, as for piped stdin); returns the exit status, the output
    and the lines not consumed."""
    if isinstance(script, Path):
        script = load_script(script)
    out = io.StringIO()
    remaining = iter(lines)
    all_variables = {"caller_id": "1000", "called": "100", **variables}
    status = await run_chat(
        script, remaining, out, variables=all_variables, echo=True, webhooks=webhooks
    )
    return status, out.getvalue(), list(remaining)


# -- pure pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "events"),
    [
        ("", [NoInput()]),
        ("   \n", [NoInput()]),
        ("check my balance\n", [Heard("check my balance")]),
        ("#1", [KeyPressed("1")]),
        ("#4217#", [KeyPressed(k) for k in "4217#"]),
        ("# 4 2 *", [KeyPressed(k) for k in "42*"]),
        ("##", [KeyPressed("#")]),
        ("#a", [KeyPressed("A")]),
    ],
)
def test_parse_input(line: str, events: list[object]) -> None:
    assert parse_input(line) == events


@pytest.mark.parametrize("line", ["#", "#12x", "#1.5"])
def test_parse_input_complains_about_bad_keys(line: str) -> None:
    assert isinstance(parse_input(line), str)


def test_describe_actions() -> None:
    assert describe(Recognized("main", "balance", "balance")) == "[intent balance]"
    assert describe(SlotFilled("account", "4217")) == "[account = 4217]"
    assert describe(Transfer("voicebot-transfer", "operator", 1, None)) == (
        "[transfer to voicebot-transfer/operator]"
    )
    assert describe(Transfer(None, None, None, "PJSIP/alice")) == "[transfer to PJSIP/alice]"
    assert describe(Hangup()) == "[hangup]"
    assert describe(CallWebhook("http://x/y", "GET", None, 1.0)) == "[webhook GET http://x/y]"


def test_chat_variables() -> None:
    assert chat_variables("555", "200", ["LANG=de", "EMPTY="]) == {
        "caller_id": "555",
        "called": "200",
        "channel.LANG": "de",
        "channel.EMPTY": "",
    }
    assert isinstance(chat_variables("1", "2", ["NOEQUALS"]), str)


# -- conversations -----------------------------------------------------------------------------


async def test_spoken_choice_digits_and_webhook(tmp_path: Path, api: BankApi) -> None:
    status, out, rest = await chat(
        bank_script(tmp_path, api=api.url),
        ["check my balance", "it's four two one seven", "unused"],
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == (
        "bot: Hello 1000, you called 100. Say balance or press 1, operator or press 0."
    )
    assert lines[1:3] == ["you> check my balance", "[intent balance]"]
    assert "[intent account]" not in lines  # a filled slot is shown as such
    assert "bot: Please say or key your four digit account number." in out
    assert "[account = 4217]" in lines
    assert f"[webhook POST {api.url}/balance?branch=]" in lines
    assert "bot: Account 4 2 1 7 has a balance of 42.5 dollars. Goodbye." in lines
    assert lines[-1] == "[hangup]"
    assert api.requests == [{"account": "4217", "caller": "1000"}]
    assert rest == ["unused"]


async def test_keys_choose_and_fill_digits(tmp_path: Path, api: BankApi) -> None:
    status, out, _ = await chat(
        bank_script(tmp_path, api=api.url), ["#1", "#42", "#17"], caller_id="77"
    )
    assert status == 0
    assert "[intent balance]" in out
    assert "[account = 4217]" in out
    assert "balance of 42.5 dollars" in out
    assert api.requests == [{"account": "4217", "caller": "77"}]


async def test_silence_reprompts(tmp_path: Path) -> None:
    status, out, _ = await chat(bank_script(tmp_path), ["", "operator"])
    assert status == 0
    lines = out.splitlines()
    assert "bot: Sorry, I didn't hear anything." in lines
    assert sum(line.startswith("bot: Hello 1000") for line in lines) == 2
    assert lines[-2:] == [
        "bot: Connecting you to an operator.",
        "[transfer to voicebot-transfer/operator]",
    ]


async def test_no_match_is_shown(tmp_path: Path) -> None:
    _, out, _ = await chat(bank_script(tmp_path), ["pizza please", "#0"])
    assert "[no match: 'pizza please']" in out
    assert "bot: Sorry, I didn't get that." in out
    assert "[transfer to voicebot-transfer/operator]" in out


@pytest.mark.parametrize(
    ("mode", "limit", "reason"),
    [("error", "2s", "HTTP 500"), ("slow", "300ms", "within 0.3 s"), ("garbage", "2s", "not JSON")],
)
async def test_webhook_failures_are_fed_back(
    tmp_path: Path, api: BankApi, mode: str, limit: str, reason: str
) -> None:
    api.mode = mode
    status, out, _ = await chat(bank_script(tmp_path, limit, api.url), ["balance", "#4217"])
    assert status == 0
    failure = next(line for line in out.splitlines() if line.startswith("[webhook failed:"))
    assert reason in failure
    assert "bot: Sorry, the balance service is not available." in out
    assert out.splitlines()[-1] == "[transfer to voicebot-transfer/operator]"


async def test_unreachable_webhook_fails(tmp_path: Path) -> None:
    _, out, _ = await chat(bank_script(tmp_path), ["balance", "4 2 1 7"])
    assert f"[webhook failed: cannot connect to {DEAD_URL}: " in out
    assert "[transfer to voicebot-transfer/operator]" in out


async def test_a_loopback_webhook_is_refused_unless_listed(tmp_path: Path, api: BankApi) -> None:
    defaults = WebhookConfig()
    _, out, _ = await chat(bank_script(tmp_path, api=api.url), ["balance", "#4217"], defaults)
    reason = f"{api.url} is a private address (loopback); list it in webhooks.allow_hosts"
    assert f"[webhook failed: {reason}]" in out
    assert api.requests == []
    assert "[transfer to voicebot-transfer/operator]" in out


async def test_a_host_not_allowed_is_not_called(tmp_path: Path, api: BankApi) -> None:
    only = WebhookConfig(allow_hosts="bank.example")
    _, out, _ = await chat(bank_script(tmp_path, api=api.url), ["balance", "#4217"], only)
    host = api.url.removeprefix("http://")
    assert f"[webhook failed: host {host} is not in webhooks.allow_hosts]" in out
    assert api.requests == []
    assert "[transfer to voicebot-transfer/operator]" in out


async def test_end_of_input_ends_the_chat(tmp_path: Path) -> None:
    status, out, _ = await chat(bank_script(tmp_path), [])
    assert status == 0
    assert out.splitlines()[-1] == "[end of input]"


async def test_bad_keys_are_reported_and_skipped(tmp_path: Path) -> None:
    _, out, _ = await chat(bank_script(tmp_path), ["#x", "#0"])
    assert "[not a phone key: 'X'" in out
    assert "[transfer to voicebot-transfer/operator]" in out


async def test_async_input_and_echo(tmp_path: Path) -> None:
    async def typed() -> AsyncIterator[str]:
        for line in ["hours\n", "goodbye\n"]:
            yield line

    out = io.StringIO()
    status = await run_chat(
        load_script(ROOT / "prompts" / "demo.yaml"),
        typed(),
        out,
        variables={"caller_id": "1000", "called": "100"},
        echo=True,
    )
    assert status == 0
    text = out.getvalue()
    assert "you> hours\n" in text
    assert "[intent hours]" in text
    assert "Monday to Friday" in text
    assert text.splitlines()[-1] == "[hangup]"


# -- the command -------------------------------------------------------------------------------


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_cli_chat_transfer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, "operator\n")
    assert main(["chat", str(bank_script(tmp_path)), "--caller-id", "555", "--called", "7"]) == 0
    out = capsys.readouterr().out
    assert "bot: Hello 555, you called 7." in out
    assert "you> operator\n" in out  # stdin is not a terminal: input is echoed
    assert out.splitlines()[-1] == "[transfer to voicebot-transfer/operator]"


def test_cli_chat_channel_variables_reach_the_webhook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies: list[Any] = []
    branches: list[str] = []
    config = tmp_path / "voicebot.toml"
    config.write_text('[webhooks]\nallow_hosts = "127.0.0.1"\n')

    async def serve_and_chat() -> int:
        async def balance(request: web.Request) -> web.Response:
            bodies.append(await request.json())
            branches.append(request.query["branch"])
            return web.json_response({"balance": 7})

        app = web.Application()
        app.router.add_post("/balance", balance)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            script = str(bank_script(tmp_path, api=url))
            args = ["--config", str(config), "chat", script, "--var", "BRANCH=north & co"]
            return await asyncio.to_thread(main, args)
        finally:
            await runner.cleanup()

    _stdin(monkeypatch, "#1\n#4217\n")
    assert asyncio.run(serve_and_chat()) == 0
    out = capsys.readouterr().out
    assert "balance of 7 dollars" in out
    assert bodies == [{"account": "4217", "caller": "1000"}]
    assert branches == ["north & co"]


def test_cli_chat_follows_the_configured_allow_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "voicebot.toml"
    config.write_text('[webhooks]\nallow_hosts = "bank.example"\n')
    _stdin(monkeypatch, "#1\n#4217\n")
    args = ["--config", str(config), "chat", str(bank_script(tmp_path))]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[webhook failed: host 127.0.0.1:9 is not in webhooks.allow_hosts]" in out


def test_cli_chat_invalid_script_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("start: main\nstates:\n  main:\n    say: hi\n    goto: nowhere\n")
    assert main(["chat", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:5:" in err
    assert "unknown state 'nowhere'" in err


def test_cli_chat_bad_var_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", str(bank_script(tmp_path)), "--var", "NOVALUE"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("now", "said"),
    [
        ("2026-12-07T10:00+00:00", "We are open now."),  # a Monday morning in London
        ("2026-12-07T21:00+03:00", "We are closed right now."),  # 18:00 in London: closed
        ("2026-12-25T10:00+00:00", "We are closed right now."),  # a closed date
    ],
)
def test_now_sets_the_clock_business_hours_see(
    now: str, said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("hours\n"))
    assert main(["chat", "--now", now, "prompts/clinic.yaml"]) == 0
    assert said in capsys.readouterr().out


def test_now_without_an_offset_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--now", "2026-12-07T10:00", "prompts/clinic.yaml"]) == 2
    assert "--now '2026-12-07T10:00': expected a time with its offset" in capsys.readouterr().err
