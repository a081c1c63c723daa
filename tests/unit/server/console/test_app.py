"""The console over real HTTP: who may see it (token URL, form, cookie, bearer), CSRF on
every POST, the Host/Origin guard, masked callers, the live stream, the history API."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from voicebot.call.results import result_record
from voicebot.config import ConsoleConfig, HttpConfig
from voicebot.dialog.parser import load_script
from voicebot.errors import OutboundError
from voicebot.server.console.app import byte_range, latency_summary, mask_number
from voicebot.server.history import CallHistory
from voicebot.server.leg import CallResult, EndReason
from voicebot.server.metrics import Metrics
from voicebot.server.status import status_app

TOKEN = "console-unit-token"
PROMPTS = Path(__file__).resolve().parents[4] / "prompts"
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
    token: str = TOKEN,
    show_callers: bool = False,
    history: Any = None,
    scripts: dict[str, Any] | None = None,
    outbound: Any = None,
) -> AsyncIterator[tuple[Client, dict[str, FakeCall]]]:
    calls = {"k1": FakeCall("chan-1", "+74951234567")}
    controller = SimpleNamespace(
        metrics=Metrics(), calls=calls, recent=[], draining=False, outbound=outbound,
        health=lambda: {"active_calls": len(calls), "max_active": 4, "engines": {}},
        scripts=SimpleNamespace(scripts=scripts or {}, default="demo"),
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


async def test_the_live_stream_sends_the_calls_then_only_what_changed() -> None:
    async with console() as (client, calls):
        await login(client)
        async with client.get("/console/api/live") as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")

            async def event() -> tuple[str, dict[str, Any]]:
                lines: list[str] = []
                while not lines or lines[-1] != "":
                    lines.append((await response.content.readline()).decode().rstrip("\n"))
                name = next(line for line in lines if line.startswith("event: "))
                data = next(line for line in lines if line.startswith("data: "))
                return name[len("event: ") :], dict(json.loads(data[len("data: ") :]))

            name, first = await asyncio.wait_for(event(), 5)
            assert name == "calls"
            assert [line["text"] for line in first["active"][0]["transcript"]] == ["Hello."]
            calls["k2"] = FakeCall("chan-2", "5550100")
            calls["k1"].transcript.append({"who": "caller", "text": "hours", "t": 2.0})
            # Each changed call alone, not all of them again.
            changed = [await asyncio.wait_for(event(), 5) for _ in range(2)]
            assert [name for name, _ in changed] == ["call", "call"]
            by_id = {call["call_id"]: call for _, call in changed}
            assert by_id["chan-1"]["transcript"][-1]["text"] == "hours"
            assert by_id["chan-2"]["caller"] == "•••••00"
            del calls["k1"]
            name, gone = await asyncio.wait_for(event(), 5)
            assert (name, gone) == ("ended", {"call_id": "chan-1"})


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


# --- with a real history ----------------------------------------------------------------------

CAPTURES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "captures"
SPOKEN = CAPTURES / "demo-hours-goodbye"  # our recorder's pcap and its transcript
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def stored_call(call_id: str, caller: str, recording: Path | None, started: float) -> tuple[
    dict[str, Any], dict[str, Any]
]:  # fmt: skip
    """A call as the controller hands it to the history: the demo capture's own transcript."""
    lines = [json.loads(line) for line in SPOKEN.with_suffix(".jsonl").read_text().splitlines()]
    turns = [line["latency_ms"] for line in lines if "latency_ms" in line]
    record = result_record(
        call_id=call_id, script_name="demo", script=None, started=started, ended=started + 19.6,
        outcome="completed", end_reason="bot-hangup", caller_id=caller, called="100",
        path=["main", "hours", "goodbye"], transcript=lines, turns=turns,
        recording=str(recording) if recording else None,
    )  # fmt: skip
    summary = {"call_id": call_id, "caller": caller, "script": "demo", "started": started,
               "transcript": lines, "turns": turns, "recording": record["recording"],
               "events": [{"t": 3.0, "kind": "no-input", "state": "main"}]}  # fmt: skip
    return summary, record


@asynccontextmanager
async def with_history(tmp_path: Path, **options: Any) -> AsyncIterator[Client]:
    recording = tmp_path / "call.pcap"
    shutil.copy(SPOKEN.with_suffix(".pcap"), recording)
    history = await CallHistory.open(tmp_path / "history.sqlite", 100)
    now = time.time()
    history.keep(*stored_call("rec-1", "+74951234567", recording, now - 60))
    history.keep(*stored_call("rec-2", "5550100", None, now - 30))
    try:
        async with console(history=history, **options) as (client, _):
            yield client
    finally:
        await history.close()


async def test_the_history_is_searched_by_post_with_callers_masked(tmp_path: Path) -> None:
    async with with_history(tmp_path) as client:
        async with client.post("/console/api/history/search", json={}, headers=AUTH) as r:
            body = await r.json()
        assert body["total"] == 2
        assert [row["call_id"] for row in body["rows"]] == ["rec-2", "rec-1"]  # newest first
        assert body["rows"][1]["caller"] == "••••••••••67"
        assert body["rows"][1]["has_recording"] and not body["rows"][0]["has_recording"]
        # The caller filter reads the whole number; it travels in the body, not the URL.
        search = {"caller": "495123"}
        async with client.post("/console/api/history/search", json=search, headers=AUTH) as r:
            assert [row["call_id"] for row in (await r.json())["rows"]] == ["rec-1"]
        async with client.post("/console/api/history/search", json={"since": "yesterday"},
                               headers=AUTH) as r:  # fmt: skip
            assert r.status == 400
            assert "since" in (await r.json())["error"]
        async with client.post("/console/api/history/search", data="[1]", headers=AUTH) as r:
            assert r.status == 400


async def test_a_stored_call_with_its_audio_and_timeline(tmp_path: Path) -> None:
    async with with_history(tmp_path) as client:
        async with client.get("/console/api/history/rec-1", headers=AUTH) as r:
            call = await r.json()
        assert call["has_audio"] and "recording" not in call  # no server path in the page
        assert call["record"]["caller_id"] == "••••••••••67" and call["caller"] == "••••••••••67"
        assert call["record"]["path"] == ["main", "hours", "goodbye"]
        async with client.get("/console/api/history/rec-1/audio/both.wav", headers=AUTH) as r:
            assert r.status == 200 and r.content_type == "audio/wav"
            assert r.headers["Accept-Ranges"] == "bytes"
            whole = await r.read()
        assert whole[:4] == b"RIFF" and len(whole) > 8000 * 2 * 2 * 15  # stereo, ~19 s
        ranged = {**AUTH, "Range": "bytes=100-199"}
        async with client.get("/console/api/history/rec-1/audio/caller.wav", headers=ranged) as r:
            assert r.status == 206 and len(await r.read()) == 100
            assert r.headers["Content-Range"].startswith("bytes 100-199/")
        async with client.get("/console/api/history/rec-1/audio/other.wav", headers=AUTH) as r:
            assert r.status == 404
        async with client.get("/console/api/history/rec-1/timeline.svg", headers=AUTH) as r:
            assert r.content_type == "image/svg+xml"
            svg = await r.text()
        assert svg.count('class="latency-bar"') == 2
        async with client.get("/console/api/history/rec-2/audio/both.wav", headers=AUTH) as r:
            assert r.status == 404
            assert "not recorded" in (await r.json())["error"]
        async with client.get("/console/api/history/no-such-call", headers=AUTH) as r:
            assert r.status == 404


async def test_scripts_with_counts_and_their_flow_graph(tmp_path: Path) -> None:
    demo = load_script(PROMPTS / "demo.yaml")
    async with with_history(tmp_path, scripts={"demo": demo}) as client:
        async with client.get("/console/api/scripts", headers=AUTH) as r:
            (script,) = (await r.json())["scripts"]
        assert script["counts"]["hours"]["entered"] == 2
        assert script["counts"]["main"]["no_input"] == 2  # one event in each stored call
        async with client.get("/console/api/scripts/demo/graph.svg", headers=AUTH) as r:
            assert r.content_type == "image/svg+xml"
            assert "entered 2" in await r.text()
        async with client.get("/console/api/scripts/nope/graph.svg", headers=AUTH) as r:
            assert r.status == 404


async def test_health_adds_the_last_hours_latency_and_the_history(tmp_path: Path) -> None:
    async with with_history(tmp_path) as client:
        async with client.get("/console/api/health", headers=AUTH) as r:
            body = await r.json()
        assert body["status"] == "ok" and body["active_calls"] == 1
        assert body["latency_last_hour"]["turns"] == 4  # two turns in each stored call
        assert body["history"]["calls"] == 2


class FakeDialler:
    def __init__(self) -> None:
        self.state = "running"

    async def campaigns(self) -> list[dict[str, Any]]:
        return [{"id": 1, "name": "reminders", "state": self.state, "counts": {"pending": 3}}]

    async def set_campaign_state(self, ref: str, action: str) -> dict[str, Any]:
        if ref != "1":
            raise OutboundError(f"no campaign {ref!r}")
        self.state = "paused" if action == "pause" else "running"
        return (await self.campaigns())[0]


async def test_campaigns_pause_and_resume() -> None:
    dialler = FakeDialler()
    async with console(outbound=dialler) as (client, _):
        csrf = {"X-CSRF-Token": await login(client)}
        async with client.get("/console/api/campaigns") as r:
            assert (await r.json())["campaigns"][0]["state"] == "running"
        async with client.post("/console/api/campaigns/1/pause", headers=csrf) as r:
            assert r.status == 200 and dialler.state == "paused"
        async with client.post("/console/api/campaigns/1/resume", headers=csrf) as r:
            assert r.status == 200 and dialler.state == "running"
        async with client.post("/console/api/campaigns/9/pause", headers=csrf) as r:
            assert r.status == 409 and "no campaign" in (await r.json())["error"]
        async with client.post("/console/api/campaigns/1/cancel", headers=csrf) as r:
            assert r.status in (404, 405)  # only pause and resume from the console


async def test_without_outbound_the_campaigns_page_says_so() -> None:
    async with console() as (client, _):
        async with client.get("/console/api/campaigns", headers=AUTH) as r:
            assert await r.json() == {"campaigns": [], "outbound": False}
