"""The console's routes on the status server: pages, a JSON API, a live event stream.

Every route but the login form needs a session (``console.auth``) or the bearer token; every
POST also needs the session's CSRF token. Caller numbers are masked unless
``console.show_callers`` is on; search terms travel in POST bodies, never in URLs, so no
caller data reaches an access log or the browser's history. Work that blocks (SQLite, reading
a recording, Graphviz) runs off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import statistics
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, is_dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ...config import ConsoleConfig, HttpConfig
from ...dialog.flowchart import GraphError, render_svg, script_dot
from ...errors import VoicebotError
from ..controller import CallController
from ..history import CallHistory, HistoryQuery
from ..leg import CallResult, EndReason
from .auth import COOKIE_NAME, CSRF_FIELD, CSRF_HEADER, Access, Session, Sessions
from .media import SIDES, CallAudio, call_audio
from .timeline import timeline_svg

log = logging.getLogger(__name__)

PREFIX = "/console"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
# How often the live stream looks at the calls; it sends only what changed.
LIVE_INTERVAL_S = 0.5
# A comment line this often keeps proxies from closing an idle stream.
LIVE_HEARTBEAT_S = 15.0
# Recordings whose audio was read lately, kept decoded: the page asks for the caller's side,
# the bot's and the timeline one after another.
AUDIO_CACHE_CALLS = 4
# Flow graphs drawn lately (a script's states with their counts).
GRAPH_CACHE = 16
# The pages run only the console's own script and styles; the timeline and graph SVGs are
# inserted as markup (our own renderers escape every caller word) and can run nothing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; media-src 'self'; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
SESSION_KEY = web.RequestKey("console_session", object)


def mask_number(number: str | None) -> str:
    """A caller number with all but its last two digits hidden: ``+74951234567`` →
    ``••••••••••67``."""
    if not number:
        return ""
    keep = 2 if len(number) > 4 else 0
    return "•" * (len(number) - keep) + number[len(number) - keep :]


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one ``Range: bytes=a-b`` an <audio> element asks for, as (start, end inclusive);
    None for the whole body (no header, or one this server does not serve: several ranges)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last) if last else size - 1)
    if start > end or start >= size:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _plain(value: Any) -> Any:
    """What ``json.dumps`` cannot write by itself: the stores' dataclasses and times."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _event(name: str, data: Any) -> str:
    """One server-sent event."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _shape(call: Mapping[str, Any]) -> str:
    """A live call as the page shows it, but for its duration (the page counts that itself)."""
    return json.dumps({k: v for k, v in call.items() if k != "duration_s"}, ensure_ascii=False)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, default=_plain, ensure_ascii=False),
        status=status,
        content_type="application/json",
        headers=SECURITY_HEADERS,
    )


def _session_of(request: web.Request) -> Session | None:
    """The session a guarded request came with (None: the bearer token)."""
    session = request[SESSION_KEY]
    return session if isinstance(session, Session) else None


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class Console:
    """The console's state: sessions, and what it reads (the controller, the history)."""

    def __init__(
        self,
        controller: CallController,
        health: Callable[[], Awaitable[dict[str, Any]]],
        http: HttpConfig,
        config: ConsoleConfig,
        history: CallHistory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.controller = controller
        self.health = health
        self.config = config
        self.history = history
        self.sessions = Sessions(http.token)
        self.clock = clock
        self._audio: OrderedDict[str, CallAudio] = OrderedDict()
        self._streams: set[asyncio.Task[Any]] = set()
        self._graphs: OrderedDict[str, bytes] = OrderedDict()

    # -- access ------------------------------------------------------------------------

    def guard(self, handler: Handler, *, page: bool = False) -> Handler:
        """``handler`` for logged-in browsers (and bearer-token clients); a POST also needs
        the CSRF token. ``page``: answer 401 with the login form rather than JSON."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            bearer = given if scheme.lower() == "bearer" else None
            access, session = self.sessions.check(
                cookie=request.cookies.get(COOKIE_NAME), bearer=bearer, now=self.clock()
            )
            if access is not Access.ALLOWED:
                if page:
                    return self._login_page(401, "")
                return _json({"error": f"log in to the console first ({access.value})"}, 401)
            if request.method == "POST":
                given_csrf = request.headers.get(CSRF_HEADER)
                if given_csrf is None and request.content_type in (
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                ):
                    given_csrf = str((await request.post()).get(CSRF_FIELD, ""))
                if not Sessions.csrf_ok(session, given_csrf):
                    return _json({"error": "missing or wrong CSRF token"}, 403)
            request[SESSION_KEY] = session
            return await handler(request)

        return guarded

    def _login_page(self, status: int, message: str) -> web.Response:
        html = _static("login.html").decode()
        note = f'<p class="error">{message}</p>' if message else ""
        return web.Response(
            text=html.replace("<!--message-->", note),
            status=status,
            content_type="text/html",
            headers=SECURITY_HEADERS,
        )

    def _start_session(self, session: Session, request: web.Request) -> web.HTTPSeeOther:
        response = web.HTTPSeeOther(f"{PREFIX}/", headers=SECURITY_HEADERS)
        response.set_cookie(
            COOKIE_NAME,
            session.id,
            path=f"{PREFIX}/",
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        return response

    async def index(self, request: web.Request) -> web.StreamResponse:
        """The console page; with ``?token=`` (the login URL): a session, then a redirect to
        the same page without the token."""
        token = request.query.get("token")
        if token is not None:
            session = self.sessions.login(token, self.clock())
            if session is None:
                return self._login_page(401, "That token is not this bot's http.token.")
            log.info("console: a browser logged in with the token URL")
            raise self._start_session(session, request)
        return await self.guard(self._index_page, page=True)(request)

    async def _index_page(self, request: web.Request) -> web.Response:
        session = _session_of(request)
        html = _static("index.html").decode().replace("{{csrf}}", session.csrf if session else "")
        return web.Response(text=html, content_type="text/html", headers=SECURITY_HEADERS)

    async def login_form(self, _: web.Request) -> web.Response:
        return self._login_page(200, "")

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        session = self.sessions.login(str(form.get("token", "")), self.clock())
        if session is None:
            return self._login_page(401, "That token is not this bot's http.token.")
        log.info("console: a browser logged in with the form")
        raise self._start_session(session, request)

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = _session_of(request)
        if session is not None:
            self.sessions.logout(session.id)
        response = web.HTTPSeeOther(f"{PREFIX}/login", headers=SECURITY_HEADERS)
        response.del_cookie(COOKIE_NAME, path=f"{PREFIX}/")
        raise response

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        suffix = Path(name).suffix
        if "/" in name or suffix not in STATIC_TYPES:
            raise web.HTTPNotFound()
        try:
            body = _static(name)
        except FileNotFoundError:
            raise web.HTTPNotFound() from None
        return web.Response(body=body, content_type=STATIC_TYPES[suffix], headers=SECURITY_HEADERS)

    # -- live calls --------------------------------------------------------------------

    def caller(self, number: str | None) -> str:
        return (number or "") if self.config.show_callers else mask_number(number)

    def live_calls(self) -> list[dict[str, Any]]:
        now = time.time()
        calls = []
        for call in list(self.controller.calls.values()):
            summary = call.summary()
            core = call.session.core if call.session is not None else None
            calls.append({
                "call_id": summary["call_id"],
                "caller": self.caller(summary["caller"]),
                "script": summary["script"],
                "state": core.state_name if core is not None else None,
                "started": summary["started"],
                "duration_s": round(now - summary["started"], 1),
                "transcript": summary["transcript"],
                "outbound": call.outbound is not None,
            })  # fmt: skip
        return sorted(calls, key=lambda c: c["started"])

    async def calls(self, _: web.Request) -> web.Response:
        return _json({"active": self.live_calls()})

    async def live(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: ``calls`` with every active call (transcripts included) when
        the page connects, then ``call`` with one call whenever it changed (but for the
        clock) and ``ended`` with the id of one that is over; a comment line when all is
        quiet for a while."""
        response = web.StreamResponse(
            headers={**SECURITY_HEADERS, "Content-Type": "text/event-stream"}
        )
        await response.prepare(request)
        task = asyncio.current_task()
        if task is not None:
            self._streams.add(task)
        sent: dict[str, str] | None = None  # each call as last sent, but for its duration
        quiet_since = time.monotonic()
        try:
            while True:
                calls = {call["call_id"]: call for call in self.live_calls()}
                shapes = {key: _shape(call) for key, call in calls.items()}
                if sent is None:
                    events = [_event("calls", {"active": list(calls.values())})]
                else:
                    events = [_event("call", calls[key]) for key, shape in shapes.items()
                              if sent.get(key) != shape]  # fmt: skip
                    events += [_event("ended", {"call_id": key}) for key in sent.keys() - shapes]
                sent = shapes
                if events:
                    await response.write("".join(events).encode())
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > LIVE_HEARTBEAT_S:
                    await response.write(b": still here\n\n")
                    quiet_since = time.monotonic()
                await asyncio.sleep(LIVE_INTERVAL_S)
        except ConnectionResetError:  # the page was closed
            pass
        finally:
            if task is not None:
                self._streams.discard(task)
        return response

    async def end_call(self, request: web.Request) -> web.Response:
        """End an active call: the caller goes back to the dialplan (VOICEBOT_RESULT=stopped)."""
        call_id = request.match_info["call_id"]
        call = next((c for c in self.controller.calls.values() if c.id == call_id), None)
        if call is None:
            return _json({"error": "no such active call"}, 404)
        call.stop(EndReason.CONSOLE, result=CallResult.STOPPED)
        log.info("console: call %s ended by an operator", call_id)
        return _json({"ended": call_id})

    async def close(self) -> None:
        """Stop the live streams (the server is shutting down)."""
        for task in list(self._streams):
            task.cancel()

    # -- history -----------------------------------------------------------------------

    def _need_history(self) -> CallHistory:
        if self.history is None:
            raise web.HTTPNotFound(
                text='{"error": "no call history: set console.history"}',
                content_type="application/json",
            )
        return self.history

    async def search(self, request: web.Request) -> web.Response:
        history = self._need_history()
        try:
            params = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError:
            return _json({"error": "the search must be a JSON object"}, 400)
        if not isinstance(params, dict):
            return _json({"error": "the search must be a JSON object"}, 400)
        try:
            query = HistoryQuery.from_params({k: str(v) for k, v in params.items() if v != ""})
        except VoicebotError as exc:
            return _json({"error": str(exc)}, 400)
        page = await history.search(query)
        body = page.as_dict()
        for row in body["rows"]:
            row["caller"] = self.caller(row.get("caller"))
        return _json(body)

    async def _stored_call(self, request: web.Request) -> dict[str, Any]:
        call = await self._need_history().call(request.match_info["call_id"])
        if call is None:
            raise web.HTTPNotFound(text='{"error": "no such call in the history"}',
                                   content_type="application/json")  # fmt: skip
        return dict(call)

    @staticmethod
    async def _recording(call: Mapping[str, Any]) -> str | None:
        """The call's recording, if it was recorded and the file is still there."""
        path = call.get("recording")
        if not path or not await asyncio.to_thread(Path(path).is_file):
            return None
        return str(path)

    async def stored_call(self, request: web.Request) -> web.Response:
        call = await self._stored_call(request)
        record = dict(call.get("record") or {})
        record["caller_id"] = self.caller(record.get("caller_id"))
        call["record"] = record
        if "caller" in call:
            call["caller"] = self.caller(call["caller"])
        call["has_audio"] = await self._recording(call) is not None
        call.pop("recording", None)  # a path on the server: nothing the page needs
        return _json(call)

    async def _audio_of(self, recording: str) -> CallAudio:
        audio = self._audio.get(recording)
        if audio is None:
            loop = asyncio.get_running_loop()
            audio = await loop.run_in_executor(None, call_audio, recording)
            self._audio[recording] = audio
            while len(self._audio) > AUDIO_CACHE_CALLS:
                self._audio.popitem(last=False)
        self._audio.move_to_end(recording)
        return audio

    async def audio(self, request: web.Request) -> web.Response:
        side = next((s for s in SIDES if s == request.match_info["side"]), None)
        if side is None:
            raise web.HTTPNotFound()
        recording = await self._recording(await self._stored_call(request))
        if recording is None:
            return _json({"error": "this call was not recorded (or its recording is gone)"}, 404)
        try:
            audio = await self._audio_of(recording)
            body = await asyncio.get_running_loop().run_in_executor(None, audio.wav, side)
        except VoicebotError as exc:
            return _json({"error": str(exc)}, 500)
        headers = {**SECURITY_HEADERS, "Accept-Ranges": "bytes", "Cache-Control": "private"}
        wanted = byte_range(request.headers.get("Range"), len(body))
        if wanted is None:
            return web.Response(body=body, content_type="audio/wav", headers=headers)
        start, end = wanted
        headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
        return web.Response(
            body=body[start : end + 1], status=206, content_type="audio/wav", headers=headers
        )

    async def timeline(self, request: web.Request) -> web.Response:
        call = await self._stored_call(request)
        caller_voice: Any = ()
        bot_voice: Any = ()
        recording = await self._recording(call)
        if recording is not None:
            with contextlib.suppress(VoicebotError):
                audio = await self._audio_of(recording)
                caller_voice, bot_voice = await asyncio.get_running_loop().run_in_executor(
                    None, audio.voice
                )
        svg = timeline_svg(call, caller_voice, bot_voice)
        return web.Response(text=svg, content_type="image/svg+xml", headers=SECURITY_HEADERS)

    # -- scripts -----------------------------------------------------------------------

    async def scripts(self, _: web.Request) -> web.Response:
        library = self.controller.scripts
        names = sorted(library.scripts)
        counts: dict[str, Any] = {}
        if self.history is not None:
            for name in names:
                counts[name] = await self.history.state_counts(name)
        return _json({
            "default": library.default,
            "scripts": [{"name": name, "title": library.scripts[name].name,
                         "states": list(library.scripts[name].states),
                         "counts": counts.get(name, {})} for name in names],
        })  # fmt: skip

    async def graph(self, request: web.Request) -> web.Response:
        script = self.controller.scripts.scripts.get(request.match_info["name"])
        if script is None:
            raise web.HTTPNotFound()
        notes: dict[str, str] = {}
        if self.history is not None:
            for state, c in (await self.history.state_counts(request.match_info["name"])).items():
                notes[state] = (f"entered {c.entered} · no-match {c.no_match} · "
                                f"no-input {c.no_input} · hang-ups {c.hangups}")  # fmt: skip
        dot = script_dot(script, notes=notes)
        svg = self._graphs.get(dot)
        if svg is None:
            try:
                svg = await asyncio.get_running_loop().run_in_executor(None, render_svg, dot)
            except GraphError as exc:
                return _json({"error": str(exc)}, 500)
            # Drawn again only when a count changed: Graphviz takes ~30 ms a drawing.
            self._graphs[dot] = svg
            while len(self._graphs) > GRAPH_CACHE:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(dot)
        return web.Response(body=svg, content_type="image/svg+xml", headers=SECURITY_HEADERS)

    # -- health ------------------------------------------------------------------------

    async def health_page(self, _: web.Request) -> web.Response:
        body = await self.health()
        if self.history is not None:
            since = self.clock() - 3600
            latencies = await self.history.turn_latencies(since)
            body["latency_last_hour"] = latency_summary(latencies)
            body["history"] = self.history.status()
        return _json(body)

    # -- campaigns ---------------------------------------------------------------------

    async def campaigns(self, _: web.Request) -> web.Response:
        dialler = self.controller.outbound
        if dialler is None:
            return _json({"campaigns": [], "outbound": False})
        return _json({"campaigns": await dialler.campaigns(), "outbound": True})

    async def campaign_state(self, request: web.Request) -> web.Response:
        dialler = self.controller.outbound
        if dialler is None:
            return _json({"error": "outbound calling is not configured"}, 404)
        action = request.match_info["action"]
        try:
            info = await dialler.set_campaign_state(request.match_info["campaign"], action)
        except VoicebotError as exc:
            return _json({"error": str(exc)}, 409)
        log.info("console: campaign %s %s by an operator", request.match_info["campaign"],
                 "paused" if action == "pause" else "resumed")  # fmt: skip
        return _json({"campaign": info})


def latency_summary(latencies: list[float]) -> dict[str, Any]:
    """p50 / p95 of voice-to-voice (ms) over the turns given."""
    if not latencies:
        return {"turns": 0, "p50_ms": None, "p95_ms": None}
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"turns": len(ordered), "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(p95, 1)}  # fmt: skip


def add_console(
    app: web.Application,
    controller: CallController,
    health: Callable[[], Awaitable[dict[str, Any]]],
    http: HttpConfig,
    config: ConsoleConfig,
    history: CallHistory | None = None,
) -> Console | None:
    """Serve the console under /console/ when ``http.token`` is set; without one, its URLs
    say how to turn it on."""
    if not http.token:

        async def off(_: web.Request) -> web.Response:
            return web.Response(
                status=404,
                text="The console needs a token: set http.token (VOICEBOT_HTTP_TOKEN).\n",
            )

        app.router.add_route("*", PREFIX + "{tail:(/.*)?}", off)
        return None
    console = Console(controller, health, http, config, history)
    guard = console.guard

    async def to_index(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{PREFIX}/")

    routes = [
        web.get(PREFIX, to_index),
        web.get(f"{PREFIX}/", console.index),
        web.get(f"{PREFIX}/login", console.login_form),
        web.post(f"{PREFIX}/login", console.login),
        web.post(f"{PREFIX}/logout", guard(console.logout)),
        web.get(f"{PREFIX}/static/{{name}}", guard(console.static)),
        web.get(f"{PREFIX}/api/calls", guard(console.calls)),
        web.get(f"{PREFIX}/api/live", guard(console.live)),
        web.post(f"{PREFIX}/api/calls/{{call_id}}/end", guard(console.end_call)),
        web.post(f"{PREFIX}/api/history/search", guard(console.search)),
        web.get(f"{PREFIX}/api/history/{{call_id}}", guard(console.stored_call)),
        web.get(f"{PREFIX}/api/history/{{call_id}}/audio/{{side}}.wav", guard(console.audio)),
        web.get(f"{PREFIX}/api/history/{{call_id}}/timeline.svg", guard(console.timeline)),
        web.get(f"{PREFIX}/api/scripts", guard(console.scripts)),
        web.get(f"{PREFIX}/api/scripts/{{name}}/graph.svg", guard(console.graph)),
        web.get(f"{PREFIX}/api/health", guard(console.health_page)),
        web.get(f"{PREFIX}/api/campaigns", guard(console.campaigns)),
        web.post(
            f"{PREFIX}/api/campaigns/{{campaign}}/{{action:pause|resume}}",
            guard(console.campaign_state),
        ),
    ]
    app.router.add_routes(routes)

    async def stop_streams(_: web.Application) -> None:
        await console.close()

    app.on_shutdown.append(stop_streams)
    return console
