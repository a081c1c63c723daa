"""The console over real HTTP: who may see it (token URL, form, cookie, bearer), CSRF on
every POST, the Host/Origin guard, masked callers, the live stream, the history API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from voicebot.config import ConsoleConfig, HttpConfig
from voicebot.server.console.app import byte_range, latency_summary, mask_number
from voicebot.server.leg import CallResult, EndReason
from voicebot.server.metrics import Metrics
from voicebot.server.status import status_app

TOKEN = "console-unit-token"
Client = TestClient[Any, Any]


class FakeCall:
    """An active call as the console reads it."""

    def __init__(self, call_id: str, caller: str) -> None:
        self.id = call_id
        self.outbound = None
        self.session = SimpleNamespace(core=SimpleNamespace(state_name="main"))
        self.stopped: tuple[EndReason, CallResult | None] | None = None
        self.transcript = [{"who": "bot", "text": "Hello.", "t": 0.1, "state": "main"}]
        self.caller = caller

    def summary(self) -> dict[str, Any]:
        return {"call_id": self.id, "caller": self.caller, "script": "demo", "started": 1000.0,
                "transcript": list(self.transcript)}  # fmt: skip

    def stop(
        self, reason: EndReason, detail: str = "", *, result: CallResult | None = None
    ) -> None:
        self.stopped = (reason, result)


@asynccontextmanager
async def console(
    token: str = TOKEN, show_callers: bool = False, history: Any = None
) -> AsyncIterator[tuple[Client, dict[str, FakeCall]]]:
    calls = {"k1": FakeCall("chan-1", "+74951234567")}
    controller = SimpleNamespace(
        metrics=Metrics(), calls=calls, recent=[], draining=False, outbound=None,
        health=lambda: {"active_calls": len(calls), "max_active": 4, "engines": {}},
        scripts=SimpleNamespace(scripts={}, default="demo"),
    )  # fmt: skip
    app = status_app(
        controller,  # type: ignore[arg-type]
        SimpleNamespace(connected=True),
        HttpConfig(token=token),
        ConsoleConfig(show_callers=show_callers),
        history,
    )
    async with TestClient(TestServer(app)) as client:
        yield client, calls


async def login(client: Client) -> str:
    """Log in with the token URL; the CSRF token of the session."""
    async with client.get(f"/console/?token={TOKEN}", allow_redirects=False) as response:
        assert response.status == 303
    async with client.get("/console/") as response:
        assert response.status == 200
        page = await response.text()
    return page.split('name="csrf-token" content="')[1].split('"')[0]


GETS = ["/console/", "/console/static/console.js", "/console/api/calls", "/console/api/live",
        "/console/api/history/chan-1", "/console/api/history/chan-1/audio/both.wav",
        "/console/api/history/chan-1/timeline.svg", "/console/api/scripts",
        "/console/api/scripts/demo/graph.svg", "/console/api/health",
        "/console/api/campaigns"]  # fmt: skip
POSTS = ["/console/api/calls/chan-1/end", "/console/api/history/search",
         "/console/api/campaigns/1/pause", "/console/logout"]  # fmt: skip


@pytest.mark.parametrize("path", GETS + POSTS)
async def test_without_the_cookie_or_token_everything_answers_401(path: str) -> None:
    async with console() as (client, calls):
        method = client.post if path in POSTS else client.get
        async with method(path, allow_redirects=False) as response:
            assert response.status == 401
        assert calls["k1"].stopped is None


async def test_without_http_token_the_console_says_how_to_turn_it_on() -> None:
    async with console(token="") as (client, _):
        async with client.get("/console/api/calls") as response:
            assert response.status == 404
            assert "http.token" in await response.text()


async def test_the_token_url_sets_a_strict_httponly_cookie_and_drops_the_token() -> None:
    async with console() as (client, _):
        async with client.get(f"/console/?token={TOKEN}", allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/console/"
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console/" in cookie
        assert TOKEN not in cookie
        async with client.get("/console/api/calls") as response:
            assert response.status == 200


async def test_a_wrong_token_url_gets_the_login_form_and_401() -> None:
    async with console() as (client, _):
        async with client.get("/console/?token=guess", allow_redirects=False) as response:
            assert response.status == 401
            assert 'name="token"' in await response.text()
            assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("token, status", [(TOKEN, 303), ("guess", 401)])
async def test_the_login_form(token: str, status: int) -> None:
    async with console() as (client, _):
        async with client.post("/console/login", data={"token": token},
                               allow_redirects=False) as response:  # fmt: skip
            assert response.status == status
        async with client.get("/console/api/calls") as response:
            assert response.status == (200 if status == 303 else 401)


async def test_a_post_without_the_csrf_token_is_refused() -> None:
    async with console() as (client, calls):
        csrf = await login(client)
        async with client.post("/console/api/calls/chan-1/end") as response:
            assert response.status == 403
        async with client.post("/console/api/calls/chan-1/end",
                               headers={"X-CSRF-Token": "forged"}) as response:  # fmt: skip
            assert response.status == 403
        assert calls["k1"].stopped is None
        async with client.post("/console/api/calls/chan-1/end",
                               headers={"X-CSRF-Token": csrf}) as response:  # fmt: skip
            assert response.status == 200
        assert calls["k1"].stopped == (EndReason.CONSOLE, CallResult.STOPPED)


async def test_a_page_of_another_site_is_forbidden_even_with_a_session() -> None:
    async with console() as (client, calls):
        csrf = await login(client)
        headers = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
        async with client.post("/console/api/calls/chan-1/end", headers=headers) as response:
            assert response.status == 403
        async with client.get(
            "/console/api/calls", headers={"Origin": "https://evil.example"}
        ) as r:
            assert r.status == 403
        assert calls["k1"].stopped is None


async def test_the_bearer_token_reads_and_acts_without_a_session() -> None:
    async with console() as (client, calls):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with client.get("/console/api/calls", headers=auth) as response:
            assert response.status == 200
        async with client.post("/console/api/calls/chan-1/end", headers=auth) as response:
            assert response.status == 200
        assert calls["k1"].stopped is not None
        async with client.get("/console/api/calls", headers={"Authorization": "Bearer x"}) as r:
            assert r.status == 401


async def test_ending_a_call_that_is_gone_is_404() -> None:
    async with console() as (client, _):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with client.post("/console/api/calls/no-such/end", headers=auth) as response:
            assert response.status == 404


@pytest.mark.parametrize("show, shown", [(False, "••••••••••67"), (True, "+74951234567")])
async def test_callers_are_masked_unless_shown(show: bool, shown: str) -> None:
    async with console(show_callers=show) as (client, _):
        await login(client)
        async with client.get("/console/api/calls") as response:
            body = await response.json()
        assert body["active"][0]["caller"] == shown
        assert body["active"][0]["state"] == "main"


async def test_the_live_stream_sends_the_calls_and_then_what_changed() -> None:
    async with console() as (client, calls):
        await login(client)
        async with client.get("/console/api/live") as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")

            async def event() -> dict[str, Any]:
                lines: list[str] = []
                while not lines or lines[-1] != "":
                    lines.append((await response.content.readline()).decode().rstrip("\n"))
                data = next(line for line in lines if line.startswith("data: "))
                return dict(json.loads(data[len("data: ") :]))

            first = await asyncio.wait_for(event(), 5)
            assert [line["text"] for line in first["active"][0]["transcript"]] == ["Hello."]
            calls["k1"].transcript.append({"who": "caller", "text": "hours", "t": 2.0})
            second = await asyncio.wait_for(event(), 5)
            assert second["active"][0]["transcript"][-1]["text"] == "hours"


async def test_pages_forbid_other_scripts_and_framing() -> None:
    async with console() as (client, _):
        await login(client)
        async with client.get("/console/") as response:
            policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


async def test_static_files_are_only_the_consoles_own() -> None:
    async with console() as (client, _):
        await login(client)
        for name, status in [("console.js", 200), ("console.css", 200), ("..%2Fapp.py", 404),
                             ("app.py", 404), ("nothing.js", 404)]:  # fmt: skip
            async with client.get(f"/console/static/{name}") as response:
                assert response.status == status, name


async def test_without_a_history_its_api_says_so() -> None:
    async with console() as (client, _):
        csrf = await login(client)
        async with client.post("/console/api/history/search", json={},
                               headers={"X-CSRF-Token": csrf}) as response:  # fmt: skip
            assert response.status == 404
            assert "console.history" in await response.text()


@pytest.mark.parametrize(
    "number, masked",
    [("+74951234567", "••••••••••67"), ("5550100", "•••••00"), ("1234", "••••"), ("", ""),
     (None, "")],
)  # fmt: skip
def test_mask_number(number: str | None, masked: str) -> None:
    assert mask_number(number) == masked


@pytest.mark.parametrize(
    "header, size, wanted",
    [(None, 100, None), ("bytes=0-", 100, (0, 99)), ("bytes=10-19", 100, (10, 19)),
     ("bytes=90-200", 100, (90, 99)), ("bytes=-10", 100, (90, 99)), ("bytes=0-1,5-6", 100, None),
     ("items=0-1", 100, None), ("bytes=-", 100, None)],
)  # fmt: skip
def test_byte_range(header: str | None, size: int, wanted: tuple[int, int] | None) -> None:
    assert byte_range(header, size) == wanted


def test_a_range_beyond_the_end_is_unsatisfiable() -> None:
    with pytest.raises(web.HTTPRequestRangeNotSatisfiable):
        byte_range("bytes=100-", 100)


@pytest.mark.parametrize(
    "latencies, summary",
    [([], {"turns": 0, "p50_ms": None, "p95_ms": None}),
     ([300.0], {"turns": 1, "p50_ms": 300.0, "p95_ms": 300.0}),
     ([float(x) for x in range(1, 101)], {"turns": 100, "p50_ms": 50.5, "p95_ms": 95.0})],
)  # fmt: skip
def test_latency_summary(latencies: list[float], summary: dict[str, Any]) -> None:
    assert latency_summary(latencies) == summary
