"""The status server answers only those allowed: a token for /calls, and against DNS
rebinding only requests that name this server (Host) from pages of this server (Origin)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from voicebot.config import HttpConfig
from voicebot.server.metrics import Metrics
from voicebot.server.status import HostPolicy, host_name, status_app

TOKEN = "s3cret-status-token"
RECENT = [{"call_id": "c1", "caller": "5550100", "transcript": ["hours"]}]

Client = TestClient[Any, Any]


@asynccontextmanager
async def status(
    draining: bool = False,
    connected: bool = True,
    engines: dict[str, dict[str, Any]] | None = None,
    **http: Any,
) -> AsyncIterator[Client]:
    """The status app over real HTTP, with the controller and stream doubles of test_metrics."""
    health = {"engines": engines or {}}
    controller = SimpleNamespace(
        metrics=Metrics(), calls={}, recent=RECENT, health=lambda: health, draining=draining
    )
    stream = SimpleNamespace(connected=connected)
    app = status_app(controller, stream, HttpConfig(**http))  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        yield client


async def get(client: Client, path: str, **headers: str) -> tuple[int, dict[str, str], str]:
    async with client.get(path, headers=headers) as response:
        return response.status, dict(response.headers), await response.text()


# --- health ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "draining, connected, code, word",
    [(False, True, 200, "ok"), (True, True, 503, "draining"),
     (False, False, 503, "ari-disconnected"), (True, False, 503, "draining")],
)  # fmt: skip
async def test_health_fails_at_once_while_draining_so_a_balancer_sends_no_new_call(
    draining: bool, connected: bool, code: int, word: str
) -> None:
    async with status(draining=draining, connected=connected) as client:
        async with client.get("/health") as response:
            assert response.status == code
            assert (await response.json())["status"] == word


@pytest.mark.parametrize(
    ("engines", "code", "down"),
    [
        ({"asr:whisper": {"loaded": True, "workers_alive": True}}, 200, None),
        ({"asr:whisper": {"loaded": True, "workers_alive": False},
          "tts:piper": {"loaded": True, "workers_alive": True}}, 503, ["asr:whisper"]),
        ({"tts:piper": {"loaded": False, "workers_alive": True},
          "turn:smart-turn-v3.2": {"loaded": True, "workers_alive": False}}, 503,
         ["tts:piper", "turn:smart-turn-v3.2"]),
    ],
)  # fmt: skip
async def test_a_dead_engine_takes_the_bot_out_of_the_balancer(
    engines: dict[str, dict[str, Any]], code: int, down: list[str] | None
) -> None:
    async with status(engines=engines) as client:
        async with client.get("/health") as response:
            body = await response.json()
            assert response.status == code
            assert body["status"] == ("ok" if down is None else "engine-down")
            assert body.get("engines_down") == down


# --- the token ------------------------------------------------------------------------------


async def test_without_a_token_configured_calls_is_open() -> None:
    async with status() as client:
        async with client.get("/calls") as response:
            assert response.status == 200
            assert (await response.json())["recent"] == RECENT


async def test_with_a_token_calls_needs_it() -> None:
    async with status(token=TOKEN) as client:
        code, headers, body = await get(client, "/calls")
        assert code == 401
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert headers["Content-Type"].startswith("application/json")
        assert "Authorization: Bearer" in body
        assert "5550100" not in body


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN}x",
        "Bearer wrong",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
        f"Bearer {TOKEN[:-1]}",
    ],
)
async def test_a_wrong_token_is_refused(authorization: str) -> None:
    async with status(token=TOKEN) as client:
        code, headers, body = await get(client, "/calls", Authorization=authorization)
    assert code == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert "5550100" not in body and TOKEN not in body


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"bearer {TOKEN}"])
async def test_the_right_token_opens_calls(authorization: str) -> None:
    async with status(token=TOKEN) as client:
        code, _, body = await get(client, "/calls", Authorization=authorization)
    assert code == 200
    assert "5550100" in body


@pytest.mark.parametrize("path", ["/health", "/metrics"])
async def test_health_and_metrics_stay_open_with_a_token_set(path: str) -> None:
    async with status(token=TOKEN) as client:
        code, _, _ = await get(client, path)
    assert code == 200


# --- Host: against DNS rebinding ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/calls", "/metrics", "/nowhere"])
async def test_a_foreign_host_name_is_misdirected_on_every_route(path: str) -> None:
    # What a browser sends after evil.example was re-pointed at 127.0.0.1.
    async with status(token=TOKEN) as client:
        code, _, body = await get(
            client, path, Host="evil.example:8089", Authorization=f"Bearer {TOKEN}"
        )
    assert code == 421
    assert "'evil.example'" in body and "http.allowed_hosts" in body


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8089", "localhost:8089", "LocalHost.", "[::1]:8089", "[::1]"]
)
async def test_loopback_names_are_answered(host: str) -> None:
    async with status() as client:
        code, _, _ = await get(client, "/calls", Host=host)
    assert code == 200


async def test_allowed_hosts_adds_names() -> None:
    async with status(allowed_hosts="bot1.example.net, Proxy.Example:443") as client:
        assert (await get(client, "/calls", Host="bot1.example.net"))[0] == 200
        assert (await get(client, "/calls", Host="proxy.example:8443"))[0] == 200
        assert (await get(client, "/calls", Host="bot2.example.net"))[0] == 421
        assert (await get(client, "/calls", Host="10.0.0.5"))[0] == 421  # not bound there


async def test_the_bound_address_is_answered() -> None:
    async with status(host="10.0.0.5") as client:
        assert (await get(client, "/health", Host="10.0.0.5:8089"))[0] == 200
        assert (await get(client, "/health", Host="10.0.0.6:8089"))[0] == 421


@pytest.mark.parametrize("bound", ["0.0.0.0", "::"])
async def test_bound_to_every_interface_any_address_but_only_listed_names(bound: str) -> None:
    async with status(host=bound, allowed_hosts="bot.example") as client:
        for host in ("10.1.2.3:8089", "192.168.0.7", "[fe80::1]:8089", "[2001:db8::5]"):
            assert (await get(client, "/calls", Host=host))[0] == 200, host
        assert (await get(client, "/calls", Host="bot.example:8089"))[0] == 200
        assert (await get(client, "/calls", Host="rebound.evil.example"))[0] == 421
        assert (await get(client, "/calls", Host="10.1.2.3.nip.io"))[0] == 421


async def test_a_request_without_host_is_misdirected() -> None:
    async with status() as client:
        assert client.server.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
        writer.write(b"GET /calls HTTP/1.0\r\n\r\n")  # HTTP/1.0 needs no Host
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.0 421") or answer.startswith(b"HTTP/1.1 421")
    assert b"5550100" not in answer


# --- Origin: pages of other sites -----------------------------------------------------------


@pytest.mark.parametrize("origin", ["https://evil.example", "http://evil.example:8089", "null"])
async def test_a_page_of_another_site_is_forbidden(origin: str) -> None:
    # The Host is fine (the page fetched http://127.0.0.1:8089 itself), the Origin is not.
    async with status(token=TOKEN) as client:
        for path in ("/calls", "/health"):
            code, _, body = await get(client, path, Origin=origin, Authorization=f"Bearer {TOKEN}")
            assert code == 403, path
            assert "5550100" not in body


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:8089", "http://localhost:3000", "https://bot.example"]
)
async def test_a_page_of_an_allowed_host_may_ask(origin: str) -> None:
    async with status(allowed_hosts="bot.example") as client:
        assert (await get(client, "/calls", Origin=origin))[0] == 200


# --- the parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Bot.Example:8089", "bot.example"),
        ("bot.example.", "bot.example"),
        ("[::1]:8089", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("", ""),
    ],
)
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("http", "allows", "refuses"),
    [
        (HttpConfig(), ["127.0.0.1", "localhost", "::1"], ["10.0.0.5", "evil.example", ""]),
        (HttpConfig(host="0.0.0.0"), ["10.0.0.5", "::1"], ["evil.example", ""]),
        (HttpConfig(host="[::]"), ["fe80::1", "10.0.0.5"], ["evil.example"]),
        (HttpConfig(allowed_hosts=" a.example ,, b.example"), ["a.example", "b.example"], [""]),
    ],
)
def test_host_policy(http: HttpConfig, allows: list[str], refuses: list[str]) -> None:
    policy = HostPolicy.of(http)
    assert [h for h in allows if not policy.allows(h)] == []
    assert [h for h in refuses if policy.allows(h)] == []
