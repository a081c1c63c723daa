"""ARI events → calls: set-up and teardown of the bridge, the externalMedia channel and the port.

For each caller entering ``Stasis(voicebot[,SCRIPT])`` the controller answers, creates a mixing
bridge and an externalMedia channel that streams to a UDP port of ours, bridges both and runs a
``CallSession``. However the call ends (caller hangup, bot hangup, error), the media channel is
hung up, the bridge destroyed, the port released and the call's tasks awaited. A failing call
never disturbs the others.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import deque
from dataclasses import dataclass, field
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
from .call import CallEnd, CallSession, SpeechServices, TranscriptLine
from .capture.record import CallRecorder
from .config import Config
from .dialog.script import Script, ScriptLibrary
from .errors import AriError, AriNotFoundError, MediaError, VoicebotError
from .media.codecs import get_codec
from .media.endpoint import PortAllocator, RtpEndpoint
from .runtime import new_session

log = logging.getLogger(__name__)

# Our objects in Asterisk carry these prefixes, so orphans of a crashed run can be found.
MEDIA_CHANNEL_PREFIX = "voicebot-media-"
BRIDGE_NAME_PREFIX = "voicebot-"
RECENT_CALLS = 50
MEDIA_STASIS_TIMEOUT_S = 5.0
# Dialplan context that dials ${VOICEBOT_DIAL} for `transfer: {endpoint: ...}`.
DIAL_CONTEXT = "voicebot-dial"


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
    started: float = field(default_factory=time.time)
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
    transcript: list[TranscriptLine] = field(default_factory=list)
    recorder: CallRecorder | None = None

    @property
    def id(self) -> str:
        return self.caller.id

    def add_line(self, line: TranscriptLine) -> None:
        self.transcript.append(line)
        if self.recorder is not None:
            self.recorder.line(line.as_dict())

    def summary(self) -> dict[str, Any]:
        session = self.session
        return {
            "call_id": self.id,
            "caller": self.caller.caller_number,
            "script": self.script_name,
            "started": self.started,
            "end_reason": self.end_reason,
            "transcript": [line.as_dict() for line in self.transcript],
            "turns": [turn.as_dict() for turn in session.stats.turns] if session else [],
            "rtp_port": self.endpoint.local_port if self.endpoint else None,
            "rtp": vars(self.endpoint.stats) if self.endpoint else {},
            "recording": str(self.recorder.pcap_path) if self.recorder else None,
        }


class CallController:
    def __init__(
        self,
        config: Config,
        ari: AriClient,
        scripts: ScriptLibrary,
        services: SpeechServices,
        allocator: PortAllocator,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        self.config = config
        self.http = http
        self.ari = ari
        self.scripts = scripts
        self.services = services
        self.allocator = allocator
        self.codec = get_codec(config.media.format)
        self.calls: dict[str, ActiveCall] = {}
        self._media_in_stasis: dict[str, asyncio.Event] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_CALLS)
        self.calls_total = 0
        self.calls_failed = 0

    # -- events ---------------------------------------------------------------------------

    def dispatch(self, event: Event) -> None:
        if isinstance(event, StasisStart):
            if event.channel.id.startswith(MEDIA_CHANNEL_PREFIX):
                # Our externalMedia channel entered the app: only now can it join a bridge.
                ready = self._media_in_stasis.get(event.channel.id)
                if ready is not None:
                    ready.set()
                return
            self._start_call(event.channel, list(event.args))
        elif isinstance(event, StasisEnd | ChannelHangupRequest | ChannelDestroyed):
            self._channel_gone(event.channel)
        elif isinstance(event, ChannelDtmfReceived):
            call = self.calls.get(event.channel.id)
            if call is not None and call.session is not None:
                call.session.key_pressed(event.digit)
                if call.recorder is not None:
                    call.recorder.key(event.digit, event.duration_ms)

    def _start_call(self, channel: Channel, args: list[str]) -> None:
        if channel.id in self.calls:
            return
        script_name = args[0] if args and args[0] else self.scripts.default
        call = ActiveCall(caller=channel, script_name=script_name)
        self.calls[channel.id] = call
        self.calls_total += 1
        call.task = asyncio.create_task(self._run_call(call), name=f"call-{channel.id}")
        call.task.add_done_callback(self._call_task_done)
        log.info(
            "call %s: from %r (%s) to %s, script %s",
            channel.id,
            channel.caller_number,
            channel.name,
            channel.extension,
            script_name,
        )

    def _call_task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: teardown failed", task.get_name(), exc_info=task.exception())

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
            log.info("call %s: %s", call.id, call.end_reason)
        except VoicebotError as exc:
            self.calls_failed += 1
            call.end_reason = f"error: {exc}"
            log.error("call %s failed: %s", call.id, exc)
        except Exception as exc:  # a bug must end this call only, never the process
            self.calls_failed += 1
            call.end_reason = f"internal error: {exc!r}"
            log.exception("call %s crashed", call.id)
        finally:
            await self._tear_down(call)

    async def _set_up_and_converse(self, call: ActiveCall) -> None:
        script = self.scripts.get(call.script_name)
        await self.ari.answer(call.id)
        media = self.config.media
        call.endpoint = await RtpEndpoint.open(
            self.allocator, media.bind_host, audio_payload_type=self.codec.payload_type
        )
        bridge = await self.ari.create_bridge("mixing", name=f"{BRIDGE_NAME_PREFIX}{call.id}")
        call.bridge_id = bridge.id
        media_id = f"{MEDIA_CHANNEL_PREFIX}{call.id}"
        in_stasis = self._media_in_stasis[media_id] = asyncio.Event()
        try:
            media_channel = await self.ari.external_media(
                self.config.ari.app,
                f"{media.advertise_host}:{call.endpoint.local_port}",
                self.codec.name,
                channel_id=media_id,
            )
            call.media_channel_id = media_channel.id
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
        host = await self.ari.get_variable(media_channel.id, "UNICASTRTP_LOCAL_ADDRESS")
        port = await self.ari.get_variable(media_channel.id, "UNICASTRTP_LOCAL_PORT")
        try:
            call.endpoint.set_remote(host, int(port))
        except ValueError:
            raise MediaError(f"Asterisk reported a bad RTP address {host!r}:{port!r}") from None
        if script.record if script.record is not None else self.config.record.enabled:
            self._start_recording(call)
        await self.ari.add_channel(bridge.id, [call.id, media_channel.id])
        call.session = new_session(
            self.services,
            self.config.vad,
            call_id=call.id,
            endpoint=call.endpoint,
            codec=self.codec,
            script=script,
            variables=await self._call_variables(call, script),
            http=self.http,
            on_transcript=call.add_line,
        )
        end = await call.session.run()
        call.end_reason = end.reason
        if end.transfer is not None:
            await self._hand_off(call, end)

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
                variables[f"channel.{name}"] = await self.ari.get_variable(call.id, name)
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
            await self.ari.set_variable(call.id, "VOICEBOT_DIAL", transfer.endpoint)
            await self.ari.continue_in_dialplan(call.id, DIAL_CONTEXT, "s", 1)
            target = f"endpoint {transfer.endpoint}"
        else:
            await self.ari.continue_in_dialplan(
                call.id, transfer.context, transfer.extension, transfer.priority
            )
            target = f"{transfer.context},{transfer.extension},{transfer.priority or 1}"
        call.end_reason = f"transfer to {target}"
        log.info("call %s: handed to the dialplan: %s", call.id, target)

    async def _release_media(self, call: ActiveCall) -> None:
        """Hang up our externalMedia channel and destroy the bridge (each at most once)."""
        media, call.media_channel_id = call.media_channel_id, None
        bridge, call.bridge_id = call.bridge_id, None
        if media:
            await self._quietly(self.ari.hangup(media), call, "hang up media channel")
        if bridge:
            await self._quietly(self.ari.destroy_bridge(bridge), call, "destroy bridge")

    async def _tear_down(self, call: ActiveCall) -> None:
        call.tearing_down = True
        await self._release_media(call)
        if not call.caller_gone and not call.handed_off:
            await self._quietly(self.ari.hangup(call.id), call, "hang up caller")
        if call.endpoint is not None:
            call.endpoint.close()
        if call.recorder is not None:
            call.recorder.close()
        self.calls.pop(call.id, None)
        self.recent.append(call.summary())
        stats = call.endpoint.stats if call.endpoint else None
        log.info(
            "call %s ended: %s (%d turns; rtp %s)",
            call.id,
            call.end_reason or "done",
            len(call.session.stats.turns) if call.session else 0,
            vars(stats) if stats else "-",
        )

    # -- housekeeping ---------------------------------------------------------------------

    async def reconcile(self) -> None:
        """After (re)connecting: remove media channels and bridges left by a crashed run."""
        active_bridges = {c.bridge_id for c in self.calls.values()}
        active_media = {c.media_channel_id for c in self.calls.values()}
        try:
            for channel in await self.ari.list_channels():
                if channel.id.startswith(MEDIA_CHANNEL_PREFIX) and channel.id not in active_media:
                    log.warning("removing orphaned media channel %s", channel.id)
                    await self._quietly(self.ari.hangup(channel.id))
            for bridge in await self.ari.list_bridges():
                name = str(bridge.raw.get("name", ""))
                if name.startswith(BRIDGE_NAME_PREFIX) and bridge.id not in active_bridges:
                    log.warning("removing orphaned bridge %s (%s)", bridge.id, name)
                    await self._quietly(self.ari.destroy_bridge(bridge.id))
        except AriError as exc:
            log.warning("could not check for orphaned channels/bridges: %s", exc)

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

    async def close(self) -> None:
        """Shutdown: end every call (hanging up callers) and wait for the teardowns."""
        tasks = [c.task for c in self.calls.values() if c.task is not None]
        for call in self.calls.values():
            call.end_reason = call.end_reason or "bot shutting down"
            if call.task is not None and not call.tearing_down:
                call.task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        return {
            "active_calls": len(self.calls),
            "calls_total": self.calls_total,
            "calls_failed": self.calls_failed,
            "ports_in_use": len(self.allocator.in_use),
        }
