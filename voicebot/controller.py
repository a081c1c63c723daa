"""ARI events → calls: set-up and teardown of the bridge, the externalMedia channel and the port.

For each caller entering ``Stasis(voicebot[,SCRIPT])`` the controller creates a mixing bridge and
an externalMedia channel that streams to a UDP port of ours, answers, bridges both and runs a
``CallSession``. However the call ends (caller hangup, bot hangup, error), the media channel is
hung up, the bridge destroyed, the port released and the call's tasks awaited. A failing call
never disturbs the others.

A caller the bot will not or cannot serve (over ``calls.max_active``, shutting down, a set-up or
call that fails) is never dropped: the channel variable ``VOICEBOT_RESULT`` is set to ``busy`` or
``error`` and the channel continues in the dialplan, which decides what the caller hears.
Everything the controller creates in Asterisk is named after its ARI app, so a resync after a
reconnect touches only this bot's objects, never another app's on the same Asterisk.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from .ari.client import AriClient
from .ari.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    Event,
    StasisEnd,
    StasisStart,
)
from .ari.models import Channel
from .ari.route import AriRoute
from .call import CallEnd, CallSession, SpeechServices, TranscriptLine
from .capture.record import CallRecorder
from .config import Config
from .dialog.script import Script, ScriptLibrary
from .errors import AriError, AriNotFoundError, MediaError, VoicebotError
from .logtext import caller_text, is_key
from .media.codecs import get_codec
from .media.endpoint import PortAllocator, RtpEndpoint
from .metrics import Metrics
from .runtime import new_session

log = logging.getLogger(__name__)

# Our externalMedia channels' ids start with this (their StasisStart is not a caller's).
MEDIA_CHANNEL_PREFIX = "voicebot-media-"
BRIDGE_ID_PREFIX = "voicebot-bridge-"
RECENT_CALLS = 50
# The channel variable the dialplan reads after Stasis() when the bot hands a caller back.
RESULT_VARIABLE = "VOICEBOT_RESULT"
# A channel found in our app at resync with no call behind it is acted on only if it is still
# there this much later (its StasisStart may simply not have been read yet).
RESYNC_GRACE_S = 1.0
# A per-call socket's StasisStart follows its ApplicationRegistered within 0.5 s (Stasis()
# polls for the connection that often); none after this long: a reconnect of a call in progress.
ROUTE_STASIS_WAIT_S = 1.0
WATCH_INTERVAL_S = 1.0
MEDIA_STASIS_TIMEOUT_S = 5.0
# Dialplan context that dials ${VOICEBOT_DIAL} for `transfer: {endpoint: ...}`.
DIAL_CONTEXT = "voicebot-dial"


def bridge_name(app: str, call_id: str) -> str:
    """Bridges are named ``voicebot:<app>:<caller channel id>``: whose they are is in the name."""
    return f"voicebot:{app}:{call_id}"


def bridge_app(name: str) -> str | None:
    """The ARI app a ``bridge_name`` belongs to; None for any other bridge."""
    prefix, _, rest = name.partition(":")
    app, _, call_id = rest.rpartition(":")
    return app if prefix == "voicebot" and app and call_id else None


def _stray_order(stray: tuple[str, str]) -> tuple[int, str]:
    kind, object_id = stray
    rank = 0 if kind == "bridge" else 1 if object_id.startswith(MEDIA_CHANNEL_PREFIX) else 2
    return rank, object_id


def _ipv4_or(*hosts: str) -> str:
    """The first IPv4 literal among ``hosts`` (a pcap names the bot by address), else 0.0.0.0."""
    for host in hosts:
        try:
            if isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address):
                return host
        except ValueError:
            continue
    return "0.0.0.0"


@dataclass
class ActiveCall:
    caller: Channel
    script_name: str
    # Where this call's ARI requests go (the bot's one connection, or the call's own socket).
    route: AriRoute
    started: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    session: CallSession | None = None
    endpoint: RtpEndpoint | None = None
    bridge_id: str | None = None
    media_channel_id: str | None = None
    caller_gone: bool = False
    # Handed back to the dialplan (transfer): the caller lives on, so never hang it up.
    handed_off: bool = False
    tearing_down: bool = False
    end_reason: str = ""
    # How it ended, for metrics: completed, transferred, caller_hangup or error. An error (or a
    # shutdown) hands a caller who is still there back to the dialplan as VOICEBOT_RESULT=error.
    result: str = ""
    transcript: list[TranscriptLine] = field(default_factory=list)
    recorder: CallRecorder | None = None
    # record.keys: false leaves the digits of the caller's keys out of the transcript, the
    # recording and /calls (the line says a key was pressed, not which).
    keys_recorded: bool = True

    @property
    def id(self) -> str:
        return self.caller.id

    def add_line(self, line: TranscriptLine) -> None:
        if not self.keys_recorded and line.who == "caller" and is_key(line.text):
            line = replace(line, text="#")
        self.transcript.append(line)
        if self.recorder is not None:
            self.recorder.line(line.as_dict())

    def summary(self) -> dict[str, Any]:
        session = self.session
        return {
            "call_id": self.id,
            "caller": self.caller.caller_number,
            "script": self.script_name,
            "app": self.route.app,
            "asterisk": self.route.asterisk_id,
            "started": self.started,
            "end_reason": self.end_reason,
            "result": self.result,
            "transcript": [line.as_dict() for line in self.transcript],
            "turns": [turn.as_dict() for turn in session.stats.turns] if session else [],
            "rtp_port": self.endpoint.local_port if self.endpoint else None,
            "rtp": vars(self.endpoint.stats) if self.endpoint else {},
            # How late the bot's own packets left (the event loop's share of any gap).
            "pacer": vars(session.pacer.stats) if session else {},
            "recording": str(self.recorder.pcap_path) if self.recorder else None,
        }


class CallController:
    def __init__(
        self,
        config: Config,
        ari: AriClient | None,
        scripts: ScriptLibrary,
        services: SpeechServices,
        allocator: PortAllocator,
        http: aiohttp.ClientSession | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.http = http
        # ari.mode = "connect": every call goes through the one client; "accept": none, each
        # call arrives with its own route (see dispatch).
        self.route = AriRoute(ari, config.ari.app) if ari is not None else None
        self.scripts = scripts
        self.services = services
        self.allocator = allocator
        self.codec = get_codec(config.media.format)
        self.calls: dict[str, ActiveCall] = {}
        self._media_in_stasis: dict[str, asyncio.Event] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_CALLS)
        self.calls_total = 0
        self.calls_failed = 0
        self.calls_refused = 0
        self.metrics = metrics or Metrics()
        self.max_active = config.calls.limit(os.cpu_count())
        # Set on SIGTERM: new callers are handed back as busy while active calls finish.
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        # Hand-backs of refused callers and resync clean-ups: owned, awaited at close.
        self._background: set[asyncio.Task[None]] = set()

    # -- events ---------------------------------------------------------------------------

    def dispatch(self, event: Event, route: AriRoute | None = None) -> None:
        """Act on one ARI event; ``route`` is the socket it came on (accept mode)."""
        route = route or self.route
        if route is None:
            raise ValueError("CallController.dispatch: no ARI route for this event")
        if isinstance(event, StasisStart):
            if event.channel.id.startswith(MEDIA_CHANNEL_PREFIX):
                # Our externalMedia channel entered the app: only now can it join a bridge.
                ready = self._media_in_stasis.get(event.channel.id)
                if ready is not None:
                    ready.set()
                return
            self._start_call(event.channel, list(event.args), route)
        elif isinstance(event, StasisEnd | ChannelHangupRequest | ChannelDestroyed):
            self._channel_gone(event.channel)
        elif isinstance(event, ChannelDtmfReceived):
            call = self.calls.get(event.channel.id)
            if call is not None and call.session is not None:
                call.session.key_pressed(event.digit)
                if call.recorder is not None:
                    call.recorder.key(event.digit, event.duration_ms)

    def _start_call(self, channel: Channel, args: list[str], route: AriRoute) -> None:
        if channel.id in self.calls:
            return
        if self.draining or len(self.calls) >= self.max_active:
            why = ("the bot is shutting down" if self.draining else
                   f"{len(self.calls)} calls active (calls.max_active = {self.max_active})")
            self._refuse(route, channel.id, "busy", why)
            return
        script_name = args[0] if args and args[0] else self.scripts.default
        call = ActiveCall(caller=channel, script_name=script_name, route=route,
                          keys_recorded=self.config.record.keys)  # fmt: skip
        self.calls[channel.id] = call
        self._idle.clear()
        self.calls_total += 1
        call.task = asyncio.create_task(self._run_call(call), name=f"call-{channel.id}")
        call.task.add_done_callback(lambda task: self._call_task_done(call, task))
        log.info(
            "call %s: from %s (%s) to %s, script %s, app %s",
            channel.id,
            # Caller numbers are personal data: shown only when the log is at DEBUG.
            caller_text(channel.caller_number, log),
            channel.name,
            channel.extension,
            script_name,
            route,
        )

    def _call_task_done(self, call: ActiveCall, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: teardown failed", task.get_name(), exc_info=task.exception())
        if self.calls.get(call.id) is call:
            # Cancelled before it ever ran (StasisStart and the hangup read in one batch), or
            # its teardown was cut short: nothing may stay behind as a phantom call.
            if call.endpoint is not None:
                call.endpoint.close()
            if call.recorder is not None:
                call.recorder.close()
            call.end_reason = call.end_reason or "caller hangup"
            self._forget(call)

    def _forget(self, call: ActiveCall) -> None:
        self.calls.pop(call.id, None)
        if not call.result:
            call.result = "caller_hangup" if call.caller_gone else "completed"
        self.recent.append(call.summary())
        stats = call.endpoint.stats if call.endpoint else None
        self.metrics.call_ended(call.result, vars(stats) if stats else None)
        if not self.calls:
            self._idle.set()

    def _refuse(self, route: AriRoute, channel_id: str, result: str, why: str) -> None:
        """Hand a caller the bot does not serve back to the dialplan, unanswered."""
        self.calls_refused += 1
        self.metrics.call_ended(result)
        log.warning("call %s: not served (%s): back to the dialplan with %s=%s",
                    channel_id, why, RESULT_VARIABLE, result)  # fmt: skip
        self._in_background(
            self._hand_back(route, channel_id, result), f"hand-back-{channel_id}"
        )

    def _in_background(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _hand_back(route: AriRoute, channel_id: str, result: str) -> bool:
        """``VOICEBOT_RESULT=result``, then on with the dialplan after Stasis(); if Asterisk
        refuses, the caller is hung up rather than left in limbo. False if the caller is gone."""
        if route.lost:
            # The call's socket is gone: Asterisk itself continues the dialplan (or reconnects).
            return False
        try:
            await route.ari.set_variable(channel_id, RESULT_VARIABLE, result)
            await route.ari.continue_in_dialplan(channel_id)
            return True
        except AriNotFoundError:
            return False
        except AriError as exc:
            log.error("call %s: cannot hand back to the dialplan (%s): hanging up", channel_id, exc)
            try:
                await route.ari.hangup(channel_id)
            except AriError:
                pass
            return False
    def _channel_gone(self, channel: Channel) -> None:
        call = self.calls.get(channel.id)
        if call is None:
            call = next((c for c in self.calls.values() if c.media_channel_id == channel.id), None)
            if call is None:
                return
            if call.end_reason:
                return
            call.end_reason = "media channel ended"
        else:
            call.caller_gone = True
            call.end_reason = call.end_reason or "caller hangup"
        # Hangup events caused by our own teardown or hand-off must not cancel them.
        if (
            call.task is not None
            and not call.task.done()
            and not call.tearing_down
            and not call.handed_off
        ):
            call.task.cancel()

    # -- one call -------------------------------------------------------------------------

    async def _run_call(self, call: ActiveCall) -> None:
        try:
            await self._set_up_and_converse(call)
        except asyncio.CancelledError:
            pass  # caller hung up (or shutdown): teardown below
        except AriNotFoundError as exc:
            call.end_reason = call.end_reason or f"channel vanished during set-up: {exc}"
            call.caller_gone = True
            log.info("call %s: %s", call.id, call.end_reason)
        except VoicebotError as exc:
            self.calls_failed += 1
            call.end_reason = f"error: {exc}"
            call.result = "error"
            log.error("call %s failed: %s", call.id, exc)
        except Exception as exc:  # a bug must end this call only, never the process
            self.calls_failed += 1
            call.end_reason = f"internal error: {exc!r}"
            call.result = "error"
            log.exception("call %s crashed", call.id)
        finally:
            await self._tear_down(call)

    async def _set_up_and_converse(self, call: ActiveCall) -> None:
        # Everything that can fail comes before the answer: a caller the bot cannot serve is
        # handed back unanswered, and the dialplan can still say "busy" or ring a person.
        script = self.scripts.get(call.script_name)
        media = self.config.media
        call.endpoint = await RtpEndpoint.open(
            self.allocator, media.bind_host, audio_payload_type=self.codec.payload_type
        )
        # Ids are chosen before the requests, so a set-up cancelled mid-request (the caller
        # hung up) still knows what to remove.
        call.bridge_id = f"{BRIDGE_ID_PREFIX}{call.id}"
        bridge = await call.route.ari.create_bridge(
            "mixing", name=bridge_name(call.route.app, call.id), bridge_id=call.bridge_id
        )
        media_id = f"{MEDIA_CHANNEL_PREFIX}{call.id}"
        call.media_channel_id = media_id
        in_stasis = self._media_in_stasis[media_id] = asyncio.Event()
        try:
            media_channel = await call.route.ari.external_media(
                call.route.app,
                f"{media.advertise_host}:{call.endpoint.local_port}",
                self.codec.name,
                channel_id=media_id,
            )
            # Asterisk answers the REST call before the channel has entered Stasis; adding it
            # to the bridge earlier fails with 422 "Channel not in Stasis application".
            try:
                await asyncio.wait_for(in_stasis.wait(), MEDIA_STASIS_TIMEOUT_S)
            except TimeoutError:
                raise MediaError(
                    f"externalMedia channel {media_id} did not enter Stasis within "
                    f"{MEDIA_STASIS_TIMEOUT_S:g} s"
                ) from None
        finally:
            self._media_in_stasis.pop(media_id, None)
        # Asterisk sends from (and expects our RTP at) this address; nothing else is accepted.
        host = await call.route.ari.get_variable(media_channel.id, "UNICASTRTP_LOCAL_ADDRESS")
        port = await call.route.ari.get_variable(media_channel.id, "UNICASTRTP_LOCAL_PORT")
        try:
            call.endpoint.set_remote(host, int(port))
        except ValueError:
            raise MediaError(f"Asterisk reported a bad RTP address {host!r}:{port!r}") from None
        variables = await self._call_variables(call, script)
        await call.route.ari.answer(call.id)
        if script.record if script.record is not None else self.config.record.enabled:
            self._start_recording(call)
        await call.route.ari.add_channel(bridge.id, [call.id, media_channel.id])
        call.session = new_session(
            self.services,
            self.config.vad,
            call_id=call.id,
            endpoint=call.endpoint,
            codec=self.codec,
            script=script,
            variables=variables,
            http=self.http,
            on_transcript=call.add_line,
            observer=self.metrics,
            log_transcripts=self.config.log.transcripts,
            webhooks=self.config.webhooks,
        )
        end = await call.session.run()
        call.end_reason = end.reason
        call.result = "completed"
        if end.transfer is not None:
            await self._hand_off(call, end)
            call.result = "transferred"

    def _start_recording(self, call: ActiveCall) -> None:
        endpoint = call.endpoint
        assert endpoint is not None and endpoint.remote is not None
        bot = (_ipv4_or(self.config.media.advertise_host, self.config.media.bind_host),
               endpoint.local_port)  # fmt: skip
        recording = {c.recorder.stem for c in self.calls.values() if c.recorder is not None}
        try:
            call.recorder = CallRecorder.start(
                self.config.record, call.id, endpoint.remote, bot, in_progress=recording
            )
        except (OSError, ValueError) as exc:
            # The caller is still served; only the recording is missing.
            log.error("call %s: not recorded: %s", call.id, exc)
            return
        endpoint.tap = call.recorder
        log.info("call %s: recording to %s", call.id, call.recorder.pcap_path)

    async def _call_variables(self, call: ActiveCall, script: Script) -> dict[str, str]:
        """What scripts can template: caller_id, called and the channel variables they use."""
        variables = {"caller_id": call.caller.caller_number, "called": call.caller.extension}
        for name in sorted(script.channel_variables()):
            try:
                variables[f"channel.{name}"] = await call.route.ari.get_variable(call.id, name)
            except AriNotFoundError:
                variables[f"channel.{name}"] = ""  # unset on this channel
        return variables

    async def _hand_off(self, call: ActiveCall, end: CallEnd) -> None:
        """Transfer: release our media first, then send the caller on into the dialplan."""
        transfer = end.transfer
        assert transfer is not None
        await self._release_media(call)
        call.handed_off = True
        if transfer.endpoint:
            # The dialplan context voicebot-dial dials ${VOICEBOT_DIAL} (asterisk-conf/).
            await call.route.ari.set_variable(call.id, "VOICEBOT_DIAL", transfer.endpoint)
            await call.route.ari.continue_in_dialplan(call.id, DIAL_CONTEXT, "s", 1)
            target = f"endpoint {transfer.endpoint}"
        else:
            await call.route.ari.continue_in_dialplan(
                call.id, transfer.context, transfer.extension, transfer.priority
            )
            target = f"{transfer.context},{transfer.extension},{transfer.priority or 1}"
        call.end_reason = f"transfer to {target}"
        log.info("call %s: handed to the dialplan: %s", call.id, target)

    async def _release_media(self, call: ActiveCall) -> None:
        """Hang up our externalMedia channel and destroy the bridge (each at most once)."""
        media, call.media_channel_id = call.media_channel_id, None
        bridge, call.bridge_id = call.bridge_id, None
        if call.route.lost:
            # Nothing can be sent any more; whoever Asterisk reconnects to cleans up (resync).
            return
        if media:
            await self._quietly(call.route.ari.hangup(media), call, "hang up media channel")
        if bridge:
            await self._quietly(call.route.ari.destroy_bridge(bridge), call, "destroy bridge")

    async def _tear_down(self, call: ActiveCall) -> None:
        call.tearing_down = True
        await self._release_media(call)
        if call.caller_gone:
            call.result = call.result if call.result == "error" else "caller_hangup"
        elif not call.handed_off:
            if call.result == "error":
                call.handed_off = await self._hand_back(call.route, call.id, "error")
                if call.handed_off:
                    log.info("call %s: handed back to the dialplan with %s=error",
                             call.id, RESULT_VARIABLE)  # fmt: skip
            elif not call.route.lost:
                await self._quietly(call.route.ari.hangup(call.id), call, "hang up caller")
        if call.endpoint is not None:
            call.endpoint.close()
        if call.recorder is not None:
            call.recorder.close()
        self._forget(call)
        stats = call.endpoint.stats if call.endpoint else None
        log.info(
            "call %s ended: %s (%d turns; rtp %s)",
            call.id,
            call.end_reason or "done",
            len(call.session.stats.turns) if call.session else 0,
            vars(stats) if stats else "-",
        )

    # -- housekeeping ---------------------------------------------------------------------

    async def connected(self, route: AriRoute | None = None) -> None:
        """An ARI WebSocket is (re)connected (``route``: a call's own, in accept mode): resync
        in the background, so that the events of this connection are read meanwhile (the
        resync waits on some of them)."""
        self._in_background(self.resync(route), "resync")

    def route_opened(self, route: AriRoute) -> None:
        """A call's own WebSocket registered its app (accept mode). Its caller's StasisStart
        normally follows at once; when none comes (Asterisk reconnected a call whose worker
        died), the app's leftovers are resynced: the caller goes back to the dialplan."""
        self._in_background(self._resync_unless_served(route), f"resync-{route.app}")

    async def _resync_unless_served(self, route: AriRoute) -> None:
        await asyncio.sleep(ROUTE_STASIS_WAIT_S)
        if not route.lost and not any(c.route is route for c in self.calls.values()):
            # The wait was the grace already: the caller should hear the fallback soon.
            await self.resync(route, grace_s=0.0)

    def route_lost(self, route: AriRoute) -> None:
        """A call's own WebSocket closed (accept mode): its calls cannot be controlled any
        more. They end here; Asterisk continues the dialplan or reconnects (possibly to
        another worker, whose resync hands the caller back)."""
        route.lost = True
        for call in list(self.calls.values()):
            if call.route is route and call.task is not None and not call.tearing_down:
                call.end_reason = call.end_reason or "its ARI WebSocket closed mid-call"
                call.result = "error"
                log.warning("call %s: %s", call.id, call.end_reason)
                call.task.cancel()

    async def resync(
        self, route: AriRoute | None = None, grace_s: float = RESYNC_GRACE_S
    ) -> None:
        """After (re)connecting to ARI: make our calls and Asterisk agree again.

        Calls whose caller channel is gone (Asterisk restarted, or the hangup came while the
        WebSocket was down) are ended and cleaned up. Channels in our app with no call behind
        them (a crashed run's callers and media channels, or in accept mode a call whose
        worker died) are handed back or hung up, and our app's bridges without a call
        destroyed. Only this app's objects are touched: another bot on the same Asterisk
        keeps its calls.
        """
        route = route or self.route
        if route is None:
            return
        mine = [c for c in self.calls.values() if c.route is route]
        try:
            live = {channel.id for channel in await route.ari.list_channels()} if mine else set()
        except AriError as exc:
            log.warning("resync: cannot list channels: %s", exc)
            return
        for call in mine:
            if call.id not in live and not call.tearing_down and call.task is not None:
                call.caller_gone = True
                call.end_reason = "caller channel gone (found on reconnecting to ARI)"
                log.warning("call %s: %s", call.id, call.end_reason)
                call.task.cancel()
        try:
            strays = await self._strays(route)
            if strays and grace_s:
                await asyncio.sleep(grace_s)
                strays &= await self._strays(route)
            # Bridges and our media channels first: a caller handed back must not stay
            # bridged to a dead call's media for a moment.
            for kind, object_id in sorted(strays, key=_stray_order):
                await self._remove_stray(route, kind, object_id)
        except AriError as exc:
            log.warning("resync: could not check for %s's orphaned channels/bridges: %s",
                        route.app, exc)  # fmt: skip

    async def _strays(self, route: AriRoute) -> set[tuple[str, str]]:
        """Our app's channels and bridges that no call of ours owns."""
        subscribed = await route.ari.application(route.app)
        bridges = await route.ari.list_bridges()
        # Owned as of the answers: events read while waiting for them (a late StasisStart)
        # count.
        owned = set(self.calls) | set(self._media_in_stasis)
        for call in self.calls.values():
            owned |= {i for i in (call.media_channel_id, call.bridge_id) if i}
        strays = {("channel", str(c)) for c in subscribed.get("channel_ids", []) if c not in owned}
        for bridge in bridges:
            if bridge_app(str(bridge.raw.get("name", ""))) == route.app and bridge.id not in owned:
                strays.add(("bridge", bridge.id))
        return strays

    async def _remove_stray(self, route: AriRoute, kind: str, object_id: str) -> None:
        if kind == "bridge":
            log.warning("resync: destroying orphaned bridge %s", object_id)
            await self._quietly(route.ari.destroy_bridge(object_id))
        elif object_id.startswith(MEDIA_CHANNEL_PREFIX):
            log.warning("resync: hanging up orphaned media channel %s", object_id)
            await self._quietly(route.ari.hangup(object_id))
        else:
            log.warning("resync: caller %s is in %s with no call: back to the dialplan",
                        object_id, route.app)  # fmt: skip
            self.metrics.call_ended("error")
            await self._hand_back(route, object_id, "error")

    # -- ghosts and runaway calls ---------------------------------------------------------

    def overdue(self, now: float) -> list[tuple[ActiveCall, str]]:
        """Calls to end now: no RTP for ``calls.rtp_timeout_s``, or longer than
        ``calls.max_duration_s``, with the reason."""
        limits = self.config.calls
        due: list[tuple[ActiveCall, str]] = []
        for call in self.calls.values():
            if call.session is None or call.tearing_down:
                continue
            if limits.max_duration_s and now - call.started_monotonic > limits.max_duration_s:
                why = f"longer than calls.max_duration_s ({limits.max_duration_s:g} s)"
                due.append((call, why))
            elif (limits.rtp_timeout_s and call.endpoint is not None
                  and now - call.endpoint.last_heard_at > limits.rtp_timeout_s):  # fmt: skip
                due.append((call, f"no RTP for calls.rtp_timeout_s ({limits.rtp_timeout_s:g} s)"))
        return due

    async def watch(self, interval_s: float = WATCH_INTERVAL_S) -> None:
        """Run for the bot's life: end ghost and runaway calls."""
        while True:
            await asyncio.sleep(interval_s)
            for call, why in self.overdue(time.monotonic()):
                log.warning("call %s: ending it: %s", call.id, why)
                call.end_reason = why
                call.result = "error"
                if call.task is not None:
                    call.task.cancel()

    @staticmethod
    async def _quietly(coro: Any, call: ActiveCall | None = None, what: str = "") -> None:
        try:
            await coro
        except AriNotFoundError:
            pass  # already gone: the normal race at hangup
        except AriError as exc:
            if call is None:
                raise
            log.warning("call %s: could not %s: %s", call.id, what, exc)

    async def drain(self, timeout_s: float) -> bool:
        """Stop taking calls (new callers are handed back as busy) and wait up to
        ``timeout_s`` for the active ones to end. True if none is left."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Shutdown: end every call (callers still there go back to the dialplan with
        VOICEBOT_RESULT=error) and wait for the teardowns and hand-backs."""
        self.draining = True
        tasks = [c.task for c in self.calls.values() if c.task is not None]
        for call in self.calls.values():
            call.end_reason = call.end_reason or "bot shutting down"
            if call.task is not None and not call.tearing_down:
                call.result = "error"
                call.task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._background, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        return {
            "active_calls": len(self.calls),
            "max_active": self.max_active,
            "draining": self.draining,
            "calls_total": self.calls_total,
            "calls_failed": self.calls_failed,
            "calls_refused": self.calls_refused,
            "ports_in_use": len(self.allocator.in_use),
            "engines": {name: e.status() for name, e in self.services.engines().items()},
        }
