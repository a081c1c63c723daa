"""An in-process fake Asterisk ARI server for tests (aiohttp.web, 127.0.0.1, random port).

It mimics the parts of Asterisk 22 ARI that voicebot uses, with the same JSON shapes, status
codes and event sequences, so client and controller code can be tested without Asterisk:

    fake = FakeAri()
    await fake.start()
    config = fake.config()                      # AriConfig pointing at the fake
    channel_id = await fake.add_caller(args=["demo"])   # emits StasisStart
    ...
    assert fake.paths("POST") == ["/channels/.../answer", "/bridges", ...]
    await fake.stop()

State is plain dicts (``channels``, ``bridges``, ``variables``) that tests may read or edit.
Every authenticated REST request is appended to ``requests`` as ``(method, path, params)``
with ``path`` relative to ``/ari`` (``/channels/abc/answer``); the JSON body, if any, is at the
same index in ``bodies`` and the arrival time (``time.monotonic()``) in ``request_times``. The
events WebSocket is not logged there (see ``ws_connects``).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, web

from voicebot.config import AriConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Asterisk's hangup reasons (DELETE /channels/{id}?reason=) and the Q.850 causes they map to.
HANGUP_CAUSES: dict[str, tuple[int, str]] = {
    "normal": (16, "Normal Clearing"),
    "busy": (17, "User busy"),
    "no_answer": (19, "No user responding"),
    "congestion": (34, "Circuit/channel congestion"),
}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def handed_back(fake: FakeAri, caller: str) -> str | None:
    """The VOICEBOT_RESULT a caller was handed back to the dialplan with (None: it was not)."""
    continued = any(p == f"/channels/{caller}/continue" for _, p, _ in fake.requests)
    return fake.variables.get(caller, {}).get("VOICEBOT_RESULT") if continued else None


def _now() -> str:
    # Asterisk's format: 2024-05-01T12:00:00.123+0000
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


# Typed request-storage key where aiohttp has them (3.13+); a plain string before.
_BODY: Any = getattr(web, "RequestKey", lambda name, _t: name)("fakeari_json", object)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


@dataclass
class Fault:
    """An injected failure: the next matching request gets ``status`` instead of its answer."""

    status: int
    message: str
    method: str | None = None
    path_contains: str | None = None
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path
        )


class FakeAri:
    def __init__(
        self,
        *,
        user: str = "voicebot",
        password: str = "secret",
        app: str = "voicebot",
        rtp_port: int | None = None,
        rtp_host: str = "127.0.0.1",
        originate_answers: bool = True,
    ) -> None:
        self.user = user
        self.password = password
        self.app = app
        # Where the fake claims Asterisk listens for the bot's RTP (UNICASTRTP_LOCAL_PORT).
        self.rtp_port = rtp_port if rtp_port is not None else free_udp_port()
        self.rtp_host = rtp_host
        # Originated channels "answer" at once and enter Stasis (StasisStart with appArgs).
        self.originate_answers = originate_answers

        self.channels: dict[str, dict[str, Any]] = {}
        self.bridges: dict[str, dict[str, Any]] = {}
        self.variables: dict[str, dict[str, str]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[Any] = []
        self.request_times: list[float] = []
        self.events_sent: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.ws_connects = 0
        # Channels that have entered the app (externalMedia ones only after a short delay).
        self.in_stasis: set[str] = set()
        self.media_stasis_delay_s = 0.05
        self._background: set[asyncio.Task[None]] = set()
        self.auth_failures = 0

        self._sockets: dict[web.WebSocketResponse, set[str]] = {}
        self._ws_changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._seq = itertools.count(1)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> str:
        """Start listening (again on the same port after a ``stop()``); return the base URL."""
        app = web.Application(middlewares=[self._middleware])
        self._routes(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        """Close every WebSocket (code 1001, like a restarting Asterisk) and stop listening."""
        await self.drop_websockets(code=WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAri:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def config(self, **overrides: Any) -> AriConfig:
        """An AriConfig for this fake, with short retry intervals suited to tests."""
        values: dict[str, Any] = {
            "url": self.url,
            "user": self.user,
            "password": self.password,
            "app": self.app,
            "retry_initial_s": 0.01,
            "retry_max_s": 0.05,
            "request_timeout_s": 2.0,
        }
        values.update(overrides)
        return AriConfig(**values)

    # --- test helpers -------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        message: str = "Internal Server Error",
        *,
        method: str | None = None,
        path_contains: str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` matching REST requests answer ``status`` + {"message": ...}."""
        self.faults.append(Fault(status, message, method, path_contains, times))

    def paths(self, method: str | None = None) -> list[str]:
        """Request paths in order, optionally only one method's."""
        return [p for m, p, _ in self.requests if method is None or m == method]

    def find_requests(
        self, method: str, path_contains: str = ""
    ) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.requests if r[0] == method and path_contains in r[1]]

    async def add_caller(
        self,
        channel_id: str | None = None,
        args: list[str] | None = None,
        caller_number: str = "1000",
        caller_name: str = "",
        exten: str = "100",
        context: str = "from-internal",
        endpoint: str = "PJSIP/1000",
    ) -> str:
        """A phone calls in: create a ringing channel and emit StasisStart with ``args``."""
        channel = self._new_channel(
            channel_id,
            name=f"{endpoint}-{next(self._seq):08x}",
            state="Ring",
            caller_number=caller_number,
            caller_name=caller_name,
            context=context,
            exten=exten,
            app_data=",".join([self.app, *(args or [])]),
        )
        self.in_stasis.add(str(channel["id"]))
        await self.emit({"type": "StasisStart", "args": list(args or []), "channel": channel})
        return str(channel["id"])

    async def caller_hangup(self, channel_id: str, cause: int = 16) -> None:
        """The far end hangs up: events as Asterisk sends them, channel removed."""
        await self._destroy_channel(channel_id, cause, "Normal Clearing" if cause == 16 else "")

    async def send_dtmf_event(self, channel_id: str, digit: str, duration_ms: int = 100) -> None:
        await self.emit(
            {
                "type": "ChannelDtmfReceived",
                "digit": digit,
                "duration_ms": duration_ms,
                "channel": self.channels[channel_id],
            }
        )

    async def emit(self, event: dict[str, Any]) -> None:
        """Send a raw event to every WebSocket subscribed to its application.

        ``timestamp``, ``application`` and ``asterisk_id`` are filled in when missing.
        """
        event = {"timestamp": _now(), "application": self.app, **event}
        event.setdefault("asterisk_id", "02:42:ac:11:00:02")
        self.events_sent.append(event)
        await self.send_raw(json.dumps(event), app=event["application"])

    async def send_raw(self, text: str, app: str | None = None) -> None:
        """Send any text frame (e.g. malformed JSON) to subscribed WebSockets."""
        for ws, apps in list(self._sockets.items()):
            if (app is None or app in apps) and not ws.closed:
                try:
                    await ws.send_str(text)
                except ConnectionError:
                    pass

    async def drop_websockets(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Close every events WebSocket from the server side (the client should reconnect)."""
        for ws in list(self._sockets):
            await ws.close(code=code)
        self._sockets.clear()

    async def wait_for_ws(self, count: int = 1, within_s: float = 5.0) -> None:
        """Wait until ``count`` WebSocket connections were accepted in total."""
        async with asyncio.timeout(within_s), self._ws_changed:
            await self._ws_changed.wait_for(lambda: self.ws_connects >= count)

    async def settle(self) -> None:
        """Wait for the events the fake sends a moment after answering (StasisStart…)."""
        while self._background:
            await asyncio.gather(*self._background)

    @property
    def open_websockets(self) -> int:
        return sum(1 for ws in self._sockets if not ws.closed)

    # --- plumbing -----------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        api_key = request.query.get("api_key")
        if api_key is not None:
            return api_key == f"{self.user}:{self.password}"
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except ValueError:
            return False
        return decoded == f"{self.user}:{self.password}"

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._authorized(request):
            self.auth_failures += 1
            return _error(401, "Authentication required")
        path = request.path.removeprefix("/ari")
        if path == "/events":
            return await handler(request)
        params = {k: v for k, v in request.query.items() if k != "api_key"}
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return _error(400, "Invalid JSON body")
        self.requests.append((request.method, path, params))
        self.bodies.append(body)
        self.request_times.append(time.monotonic())
        request[_BODY] = body
        for fault in self.faults:
            if fault.matches(request.method, path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return _error(fault.status, fault.message)
        return await handler(request)

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/ari/events", self._events)
        r.add_get("/ari/asterisk/info", self._asterisk_info)
        r.add_get("/ari/channels", self._list_channels)
        r.add_post("/ari/channels", self._originate)
        r.add_post("/ari/channels/externalMedia", self._external_media)
        r.add_get("/ari/channels/{id}", self._get_channel)
        r.add_delete("/ari/channels/{id}", self._hangup)
        r.add_post("/ari/channels/{id}/answer", self._answer)
        r.add_get("/ari/channels/{id}/variable", self._get_variable)
        r.add_post("/ari/channels/{id}/variable", self._set_variable)
        r.add_post("/ari/channels/{id}/continue", self._continue)
        r.add_post("/ari/channels/{id}/play", self._play)
        r.add_post("/ari/channels/{id}/dtmf", self._dtmf)
        r.add_get("/ari/applications/{app}", self._application)
        r.add_get("/ari/bridges", self._list_bridges)
        r.add_post("/ari/bridges", self._create_bridge)
        r.add_get("/ari/bridges/{id}", self._get_bridge)
        r.add_delete("/ari/bridges/{id}", self._destroy_bridge)
        r.add_post("/ari/bridges/{id}/addChannel", self._add_channel)
        r.add_post("/ari/bridges/{id}/removeChannel", self._remove_channel)

    def _new_channel(
        self,
        channel_id: str | None,
        *,
        name: str,
        state: str,
        caller_number: str = "",
        caller_name: str = "",
        context: str = "default",
        exten: str = "s",
        app_data: str = "",
    ) -> dict[str, Any]:
        channel_id = channel_id or f"{1700000000 + next(self._seq)}.{next(self._seq)}"
        channel: dict[str, Any] = {
            "id": channel_id,
            "name": name,
            "state": state,
            "protocol_id": "",
            "caller": {"name": caller_name, "number": caller_number},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {
                "context": context,
                "exten": exten,
                "priority": 1,
                "app_name": "Stasis",
                "app_data": app_data or self.app,
            },
            "creationtime": _now(),
            "language": "en",
        }
        self.channels[channel_id] = channel
        self.variables.setdefault(channel_id, {})  # tests may preset some
        return channel

    def _bridges_of(self, channel_id: str) -> list[dict[str, Any]]:
        return [b for b in self.bridges.values() if channel_id in b["channels"]]

    async def _destroy_channel(self, channel_id: str, cause: int, cause_txt: str) -> None:
        channel = self.channels.get(channel_id)
        if channel is None:
            return
        await self.emit({"type": "ChannelHangupRequest", "cause": cause, "channel": channel})
        for bridge in self._bridges_of(channel_id):
            bridge["channels"].remove(channel_id)
            await self.emit({"type": "ChannelLeftBridge", "bridge": bridge, "channel": channel})
        self.in_stasis.discard(channel_id)
        await self.emit({"type": "StasisEnd", "channel": channel})
        channel = {**channel, "state": "Down"}
        del self.channels[channel_id]
        self.variables.pop(channel_id, None)
        await self.emit(
            {"type": "ChannelDestroyed", "cause": cause, "cause_txt": cause_txt, "channel": channel}
        )

    def _channel_or_404(self, request: web.Request) -> dict[str, Any]:
        channel = self.channels.get(request.match_info["id"])
        if channel is None:
            raise web.HTTPNotFound(
                text=json.dumps({"message": "Channel not found"}), content_type="application/json"
            )
        return channel

    def _bridge_or_404(self, request: web.Request) -> dict[str, Any]:
        bridge = self.bridges.get(request.match_info["id"])
        if bridge is None:
            raise web.HTTPNotFound(
                text=json.dumps({"message": "Bridge not found"}), content_type="application/json"
            )
        return bridge

    # --- handlers -----------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        apps = {a for a in request.query.get("app", "").split(",") if a}
        if not apps:
            return _error(400, "Missing app parameter")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets[ws] = apps
        async with self._ws_changed:
            self.ws_connects += 1
            self._ws_changed.notify_all()
        try:
            async for _msg in ws:
                pass  # ARI clients send nothing we need to act on
        finally:
            self._sockets.pop(ws, None)
        return ws

    async def _asterisk_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "build": {
                    "os": "Linux",
                    "kernel": "6.1.0",
                    "machine": "x86_64",
                    "options": "",
                    "date": "2024-10-01",
                    "user": "builder",
                },
                "system": {"version": "22.0.0", "entity_id": "02:42:ac:11:00:02"},
                "config": {
                    "name": "",
                    "default_language": "en",
                    "setid": {"user": "asterisk", "group": "asterisk"},
                },
                "status": {"startup_time": _now(), "last_reload_time": _now()},
            }
        )

    async def _list_channels(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.channels.values()))

    async def _get_channel(self, request: web.Request) -> web.Response:
        return web.json_response(self._channel_or_404(request))

    async def _originate(self, request: web.Request) -> web.Response:
        q = request.query
        endpoint = q.get("endpoint")
        if not endpoint:
            return _error(400, "Endpoint must be specified")
        if not q.get("app") and not q.get("extension"):
            return _error(400, "Application or extension must be specified")
        if q.get("channelId") in self.channels:
            return _error(409, "Channel with given unique ID already exists")
        channel = self._new_channel(
            q.get("channelId"),
            name=f"{endpoint}-{next(self._seq):08x}",
            state="Down",
            caller_number=q.get("callerId", ""),
            app_data=",".join(filter(None, [q.get("app", ""), q.get("appArgs", "")])),
        )
        self._set_body_variables(str(channel["id"]), request)
        result = dict(channel)
        if self.originate_answers and q.get("app"):
            channel["state"] = "Up"
            self.in_stasis.add(str(channel["id"]))
            args = q.get("appArgs", "")
            await self.emit(
                {
                    "type": "StasisStart",
                    "application": q["app"],
                    "args": args.split(",") if args else [],
                    "channel": channel,
                }
            )
        return web.json_response(result)

    async def _external_media(self, request: web.Request) -> web.Response:
        q = request.query
        for key in ("app", "external_host", "format"):
            if not q.get(key):
                return _error(400, f"Parameter {key} is required")
        if q.get("encapsulation", "rtp") not in ("rtp", "audiosocket"):
            return _error(400, "Unsupported encapsulation")
        if q.get("channelId") in self.channels:
            return _error(409, "Channel with given unique ID already exists")
        channel = self._new_channel(
            q.get("channelId"),
            # chan_rtp names the channel after the remote address plus a pointer.
            name=f"UnicastRTP/{q['external_host']}-0x{uuid.uuid4().hex[:12]}",
            state="Up",
            app_data=q["app"],
        )
        channel_id = str(channel["id"])
        self._set_body_variables(channel_id, request)
        # What real Asterisk sets: where *it* listens, i.e. where the bot must send RTP.
        self.variables[channel_id]["UNICASTRTP_LOCAL_ADDRESS"] = self.rtp_host
        self.variables[channel_id]["UNICASTRTP_LOCAL_PORT"] = str(self.rtp_port)

        # Like Asterisk, answer first and let the channel enter Stasis a moment later: it can
        # only join a bridge after its StasisStart.
        async def enter_stasis() -> None:
            await asyncio.sleep(self.media_stasis_delay_s)
            if channel_id in self.channels:
                self.in_stasis.add(channel_id)
                await self.emit(
                    {"type": "StasisStart", "application": q["app"], "args": [], "channel": channel}
                )

        task = asyncio.create_task(enter_stasis())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return web.json_response(channel)

    def _set_body_variables(self, channel_id: str, request: web.Request) -> None:
        body = request.get(_BODY)
        if isinstance(body, dict) and isinstance(body.get("variables"), dict):
            self.variables[channel_id].update(
                {str(k): str(v) for k, v in body["variables"].items()}
            )

    async def _hangup(self, request: web.Request) -> web.Response:
        channel = self._channel_or_404(request)
        reason = request.query.get("reason", "normal")
        if reason not in HANGUP_CAUSES:
            return _error(400, "Invalid reason for hangup provided")
        cause, cause_txt = HANGUP_CAUSES[reason]
        await self._destroy_channel(str(channel["id"]), cause, cause_txt)
        return web.Response(status=204)

    async def _answer(self, request: web.Request) -> web.Response:
        channel = self._channel_or_404(request)
        if channel["state"] != "Up":
            channel["state"] = "Up"
            await self.emit({"type": "ChannelStateChange", "channel": channel})
        return web.Response(status=204)

    async def _get_variable(self, request: web.Request) -> web.Response:
        channel = self._channel_or_404(request)
        name = request.query.get("variable")
        if not name:
            return _error(400, "Variable name is required")
        value = self.variables[channel["id"]].get(name)
        if value is None:
            return _error(404, "Provided variable was not found")
        return web.json_response({"value": value})

    async def _set_variable(self, request: web.Request) -> web.Response:
        channel = self._channel_or_404(request)
        name = request.query.get("variable")
        if not name:
            return _error(400, "Variable name is required")
        value = request.query.get("value", "")
        self.variables[channel["id"]][name] = value
        await self.emit(
            {"type": "ChannelVarset", "variable": name, "value": value, "channel": channel}
        )
        return web.Response(status=204)

    async def _continue(self, request: web.Request) -> web.Response:
        channel = self._channel_or_404(request)
        q = request.query
        dialplan = channel["dialplan"]
        dialplan["context"] = q.get("context", dialplan["context"])
        dialplan["exten"] = q.get("extension", dialplan["exten"])
        dialplan["priority"] = int(q.get("priority", 1))
        # The channel lives on in the dialplan, outside our app.
        self.in_stasis.discard(str(channel["id"]))
        await self.emit({"type": "StasisEnd", "channel": channel})
        return web.Response(status=204)

    async def _play(self, request: web.Request) -> web.Response:
        channel = self._channel_or_404(request)
        media = request.query.get("media")
        if not media:
            return _error(400, "media parameter is required")
        playback_id = request.query.get("playbackId") or str(uuid.uuid4())
        playback = {
            "id": playback_id,
            "media_uri": media.split(",")[0],
            "target_uri": f"channel:{channel['id']}",
            "language": "en",
            "state": "queued",
        }
        return web.json_response(playback, status=201)

    async def _dtmf(self, request: web.Request) -> web.Response:
        self._channel_or_404(request)
        if not request.query.get("dtmf"):
            return _error(400, "DTMF is required")
        return web.Response(status=204)

    async def _application(self, request: web.Request) -> web.Response:
        if request.match_info["app"] != self.app:
            return _error(404, "Application not found")
        return web.json_response({
            "name": self.app,
            "channel_ids": sorted(c for c in self.in_stasis if c in self.channels),
            "bridge_ids": sorted(self.bridges),
            "endpoint_ids": [],
            "device_names": [],
        })  # fmt: skip

    async def _list_bridges(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.bridges.values()))

    async def _get_bridge(self, request: web.Request) -> web.Response:
        return web.json_response(self._bridge_or_404(request))

    async def _create_bridge(self, request: web.Request) -> web.Response:
        q = request.query
        bridge_id = q.get("bridgeId") or str(uuid.uuid4())
        bridge = {
            "id": bridge_id,
            "technology": "simple_bridge",
            "bridge_type": q.get("type", "mixing").split(",")[0],
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": q.get("name", ""),
            "channels": [],
            "creationtime": _now(),
            "video_mode": "talker",
        }
        self.bridges[bridge_id] = bridge
        return web.json_response(bridge)

    async def _destroy_bridge(self, request: web.Request) -> web.Response:
        bridge = self._bridge_or_404(request)
        for channel_id in list(bridge["channels"]):
            bridge["channels"].remove(channel_id)
            await self.emit(
                {
                    "type": "ChannelLeftBridge",
                    "bridge": bridge,
                    "channel": self.channels[channel_id],
                }
            )
        del self.bridges[bridge["id"]]
        await self.emit({"type": "BridgeDestroyed", "bridge": bridge})
        return web.Response(status=204)

    def _channel_ids_param(self, request: web.Request) -> list[str]:
        return [c for c in request.query.get("channel", "").split(",") if c]

    async def _add_channel(self, request: web.Request) -> web.Response:
        bridge = self._bridge_or_404(request)
        ids = self._channel_ids_param(request)
        if not ids:
            return _error(400, "Missing parameter channel")
        # Real Asterisk answers 400 (not 404) for an unknown channel in the query string.
        if any(c not in self.channels for c in ids):
            return _error(400, "Channel not found")
        if any(c not in self.in_stasis for c in ids):
            return _error(422, "Channel not in Stasis application")
        for channel_id in ids:
            if channel_id not in bridge["channels"]:
                bridge["channels"].append(channel_id)
                await self.emit(
                    {
                        "type": "ChannelEnteredBridge",
                        "bridge": bridge,
                        "channel": self.channels[channel_id],
                    }
                )
        return web.Response(status=204)

    async def _remove_channel(self, request: web.Request) -> web.Response:
        bridge = self._bridge_or_404(request)
        ids = self._channel_ids_param(request)
        if not ids:
            return _error(400, "Missing parameter channel")
        if any(c not in self.channels for c in ids):
            return _error(400, "Channel not found")
        if any(c not in bridge["channels"] for c in ids):
            return _error(422, "Channel not in this bridge")
        for channel_id in ids:
            bridge["channels"].remove(channel_id)
            await self.emit(
                {
                    "type": "ChannelLeftBridge",
                    "bridge": bridge,
                    "channel": self.channels[channel_id],
                }
            )
        return web.Response(status=204)
