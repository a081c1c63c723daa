"""``voicebot run``'s server: what it refuses to start with, what it warns about, and the two
event feeds (one WebSocket to Asterisk, or a worker accepting Asterisk's per-call sockets).

``voicebot.cli.main`` end to end is tests/unit/test_cli.py; here the functions are called."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.support.doubles import ListAsr, ToneTts
from tests.support.fakeari import FakeAri
from voicebot.ari.client import AriClient
from voicebot.call import SpeechServices
from voicebot.config import PLACEHOLDER_PASSWORD, AriConfig, Config, HttpConfig
from voicebot.dialog.library import ScriptLibrary
from voicebot.errors import ConfigError, ScriptError
from voicebot.media.endpoint import PortAllocator
from voicebot.runtime import Runtime
from voicebot.server.app import (
    AcceptedFeed,
    ConnectedFeed,
    _warn_about_exposure,
    require_ari_password,
    require_status_token,
    serve,
)
from voicebot.server.controller import CallController

ROOT = Path(__file__).resolve().parents[3]
SECRET = "Zq7-real-ari-secret"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def taken_tcp_port() -> tuple[socket.socket, int]:
    """A port something else listens on (the caller closes the socket)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def controller_for(
    config: Config, ari: AriClient | None = None
) -> AsyncIterator[CallController]:
    runtime = Runtime(config, SpeechServices(ListAsr([]), ToneTts()))
    controller = CallController(
        config,
        ari,
        ScriptLibrary(ROOT / "prompts", "demo"),
        runtime,
        PortAllocator("127.0.0.1", 41160, 41169),
    )
    try:
        yield controller
    finally:
        await controller.close()
        await runtime.close()


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


# -- the ARI password ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "what"),
    [(PLACEHOLDER_PASSWORD, f"the placeholder {PLACEHOLDER_PASSWORD!r}"), ("", "empty")],
)
def test_no_real_ari_password_is_refused_saying_where_to_set_one(password: str, what: str) -> None:
    with pytest.raises(ConfigError) as refused:
        require_ari_password(AriConfig(password=password))
    message = str(refused.value)
    assert message.startswith(f"ari.password is {what}: ")
    assert "VOICEBOT_ARI_PASSWORD" in message and "[ari]" in message


def test_a_real_ari_password_passes() -> None:
    require_ari_password(AriConfig(password=SECRET))


async def test_serve_refuses_the_placeholder_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ari\.password is the placeholder"):
        await serve(Config(), tmp_path / "no-scripts")


async def test_serve_refuses_a_missing_scripts_directory_before_the_models(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config(ari=AriConfig(password=SECRET, url="http://pbx.example:8088"))
    with pytest.raises(ScriptError, match="scripts directory not found"):
        await serve(config, tmp_path / "no-scripts")
    # What it warns about is said first, and names no secret.
    assert any("ARI at pbx.example is reached over plain http://" in w for w in warnings_of(caplog))
    assert SECRET not in caplog.text


# -- what start-up warns about ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ari", "http", "warned"),
    [
        (
            AriConfig(url="http://pbx.example:8088"),
            HttpConfig(),
            ["ARI at pbx.example is reached over plain http://"],
        ),
        (AriConfig(url="https://pbx.example:8089"), HttpConfig(), []),
        (AriConfig(url="http://127.0.0.1:8088"), HttpConfig(), []),
        # A worker: its per-call sockets are the risk; ari.url is not used.
        (
            AriConfig(mode="accept", listen="192.0.2.11:8765", url="http://pbx:8088"),
            HttpConfig(),
            [
                "ari.listen 192.0.2.11:8765: Asterisk's per-call WebSockets (the ARI password and "
                "every call's events) arrive unencrypted"
            ],
        ),
        (AriConfig(mode="accept", listen="127.0.0.2:8765"), HttpConfig(), []),
    ],
)
def test_what_an_operator_is_warned_about(
    caplog: pytest.LogCaptureFixture, ari: AriConfig, http: HttpConfig, warned: list[str]
) -> None:
    _warn_about_exposure(Config(ari=ari, http=http))
    warnings = warnings_of(caplog)
    assert len(warnings) == (1 if warned else 0), warnings
    for fragment in warned:
        assert fragment in warnings[0]


@pytest.mark.parametrize(
    "http",
    [HttpConfig(host="0.0.0.0"), HttpConfig(host="192.0.2.11"), HttpConfig(host="bot.example")],
)
def test_a_status_server_beyond_this_machine_needs_a_token(http: HttpConfig) -> None:
    with pytest.raises(
        ConfigError,
        match=r"http.host .*: the status server's /calls .* "
        r"VOICEBOT_HTTP_TOKEN \(http.token\), or bind http.host to 127.0.0.1",
    ):
        require_status_token(http)


@pytest.mark.parametrize(
    "http",
    [
        HttpConfig(),  # 127.0.0.1
        HttpConfig(host="localhost"),
        HttpConfig(host="::1"),
        HttpConfig(host="0.0.0.0", token="t0ken"),
        HttpConfig(host="0.0.0.0", port=0),  # no status server at all
    ],
)
def test_a_status_server_on_this_machine_or_with_a_token_starts(http: HttpConfig) -> None:
    require_status_token(http)


# -- the event feeds -------------------------------------------------------------------------


async def test_a_worker_refuses_a_listen_port_in_use_naming_ari_listen() -> None:
    sock, port = taken_tcp_port()
    try:
        config = Config(ari=AriConfig(mode="accept", listen=f"127.0.0.1:{port}"))
        async with controller_for(config) as controller:
            feed = AcceptedFeed(config, controller)
            refusal = rf"^ari\.listen: cannot listen on 127\.0\.0\.1:{port}: "
            with pytest.raises(ConfigError, match=refusal):
                await feed.run()
            assert not feed.connected
            await feed.close()
    finally:
        sock.close()


async def test_a_worker_listens_until_closed_and_refuses_sockets_when_draining() -> None:
    probe, port = taken_tcp_port()
    probe.close()  # a port that was free a moment ago
    config = Config(ari=AriConfig(mode="accept", listen=f"127.0.0.1:{port}"))
    async with controller_for(config) as controller:
        feed = AcceptedFeed(config, controller)
        assert not feed.connected
        running = asyncio.create_task(feed.run())
        try:
            await until(lambda: feed.connected or running.done())
            assert feed.connected
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/ari") as response,
            ):
                assert response.status == 401  # no credentials: refused, not as draining
            feed.stop_taking_calls()
            assert feed.acceptor.refusing
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/ari") as response,
            ):
                assert response.status == 503  # the load balancer tries another worker
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await feed.close()
        assert not feed.connected


async def test_one_websocket_to_asterisk_carries_the_calls_and_closes() -> None:
    async with FakeAri() as fake:
        config = Config(ari=fake.config())
        async with AriClient(config.ari) as ari, controller_for(config, ari) as controller:
            feed = ConnectedFeed(config, controller)
            assert not feed.connected
            running = asyncio.create_task(feed.run())
            try:
                await fake.wait_for_ws()
                await until(lambda: feed.connected)
                # Connected: the controller resyncs with Asterisk (our app's leftovers).
                await until(
                    lambda: (
                        ("GET", f"/applications/{fake.app}")
                        in [(m, p) for m, p, _ in fake.requests]
                    )
                )
                feed.stop_taking_calls()  # the draining controller hands new callers back
                await feed.settle()
            finally:
                await feed.close()
                await asyncio.wait_for(running, 5)
            assert not feed.connected
