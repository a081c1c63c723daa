"""One caller's ARI side: the bridge, the externalMedia channel and our RTP port, answering,
recording, handing the caller on to the dialplan, and releasing all of it again.

Everything created in Asterisk for a call is named after the call and its ARI app, so that a
resync after a reconnect can tell this bot's leftovers from another app's (``bridge_app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Collection, Coroutine, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..ari.models import Channel
from ..ari.route import AriRoute
from ..call import CallEnd, CallSession
from ..call.recording import CallRecorder
from ..call.results import refused_record as refused
from ..call.results import result_record
from ..config import Config, MediaConfig
from ..dialog.model import Script
from ..errors import AriError, AriNotFoundError, MediaError
from ..media.codecs import Codec
from ..media.endpoint import PortAllocator, RtpEndpoint
from ..outbound.dialler import Attempt

log = logging.getLogger(__name__)

# Our externalMedia channels' ids start with this (their StasisStart is not a caller's).
MEDIA_CHANNEL_PREFIX = "voicebot-media-"
BRIDGE_ID_PREFIX = "voicebot-bridge-"
# The channel variable the dialplan reads after Stasis() when the bot hands a caller back.
RESULT_VARIABLE = "VOICEBOT_RESULT"
MEDIA_STASIS_TIMEOUT_S = 5.0
# Dialplan context that dials ${VOICEBOT_DIAL} for `transfer: {endpoint: ...}`.
DIAL_CONTEXT = "voicebot-dial"


class CallResult(StrEnum):
    """How a call ended, for metrics and /calls; ``busy`` and ``error`` are also what the
    dialplan reads in VOICEBOT_RESULT when a caller is handed back."""

    COMPLETED = "completed"
    TRANSFERRED = "transferred"
    CALLER_HANGUP = "caller_hangup"
    BUSY = "busy"
    ERROR = "error"
    # An operator ended the call from the console: the caller goes back to the dialplan.
    STOPPED = "stopped"


# A caller still there when the call ends with one of these goes back to the dialplan.
HANDED_BACK = frozenset({CallResult.ERROR, CallResult.STOPPED})


class EndReason(StrEnum):
    """Why a call ended; ``Ending`` adds the particulars (an error, a transfer's target)."""

    CALLER_HANGUP = "caller hangup"
    MEDIA_ENDED = "media channel ended"
    BOT_HANGUP = "bot-hangup"
    MACHINE = "machine"  # an outbound call answered by a machine, no message to leave
    TRANSFER = "transfer"
    VANISHED = "channel vanished during set-up"
    ERROR = "error"
    CRASH = "internal error"
    SOCKET_CLOSED = "its ARI WebSocket closed mid-call"
    GONE_AT_RESYNC = "caller channel gone (found on reconnecting to ARI)"
    OVERDUE = "overdue"
    SHUTDOWN = "bot shutting down"
    CONSOLE = "ended from the console"


@dataclass(frozen=True)
class Ending:
    reason: EndReason
    detail: str = ""

    @property
    def text(self) -> str:
        """As /calls and the log say it: "caller hangup", "transfer to PJSIP/operator",
        "error: <what failed>", or a watchdog's own sentence."""
        if not self.detail:
            return self.reason.value
        if self.reason is EndReason.TRANSFER:
            return f"transfer to {self.detail}"
        if self.reason is EndReason.OVERDUE:
            return self.detail
        return f"{self.reason.value}: {self.detail}"


def bridge_name(app: str, call_id: str) -> str:
    """Bridges are named ``voicebot:<app>:<caller channel id>``: whose they are is in the name."""
    return f"voicebot:{app}:{call_id}"


def bridge_app(name: str) -> str | None:
    """The ARI app a ``bridge_name`` belongs to; None for any other bridge."""
    prefix, _, rest = name.partition(":")
    app, _, call_id = rest.rpartition(":")
    return app if prefix == "voicebot" and app and call_id else None


def call_key(route: AriRoute, channel_id: str) -> str:
    """How the bot tells calls (and its media channels) apart: by Asterisk and channel id. Two
    Asterisks of one pool without distinct ``systemname``s give their callers the same ids."""
    return f"{route.asterisk_id}/{channel_id}" if route.asterisk_id else channel_id


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
    # An outbound call (the dialler's attempt): answered already, judged by AMD first.
    outbound: Attempt | None = None
    tearing_down: bool = False
    ending: Ending | None = None
    # An error (or a shutdown) hands a caller who is still there back to the dialplan as
    # VOICEBOT_RESULT=error; unset until the call is over or known to have failed.
    result: CallResult | None = None
    recorder: CallRecorder | None = None
    # record.keys: false leaves the digits of the caller's keys out of /calls (the line says
    # a key was pressed, not which); the recorder applies the same setting to its files.
    keys_recorded: bool = True

    @property
    def id(self) -> str:
        return self.caller.id

    @property
    def key(self) -> str:
        return call_key(self.route, self.id)

    def end(self, reason: EndReason, detail: str = "") -> None:
        """Say why the call ends, unless a reason is known already (the first one stands)."""
        if self.ending is None:
            self.ending = Ending(reason, detail)

    def cancel(self) -> None:
        """Cancel the call's task, once: ARI sends several events per hangup, and a second
        cancel would cut the session's shutdown short (its pacer left running)."""
        task = self.task
        if task is not None and not task.done() and not task.cancelling():
            task.cancel()

    def stop(
        self,
        reason: EndReason,
        detail: str = "",
        *,
        failed: bool = False,
        result: CallResult | None = None,
    ) -> None:
        """End the call from outside its task (watchdog, resync, a lost socket, shutdown, the
        console): its task is cancelled and tears the call down. ``failed``: a caller still
        there is handed back to the dialplan with VOICEBOT_RESULT=error; ``result`` (one of
        ``HANDED_BACK``): handed back with that result."""
        if self.task is None or self.tearing_down:
            return
        self.end(reason, detail)
        if failed:
            self.result = CallResult.ERROR
        elif result is not None:
            self.result = result
        self.cancel()

    def result_record(self, script: Script | None) -> dict[str, Any]:
        """The call's result record (``call.results``), once it is over."""
        session = self.session
        dialog = session.core.dialog if session is not None else None
        summary = self.summary()
        return (
            result_record(
                call_id=self.id,
                script_name=self.script_name,
                script=script,
                started=self.started,
                ended=time.time(),
                outcome=self.result.value if self.result else "",
                end_reason=self.ending.text if self.ending else "",
                caller_id=self.caller.caller_number,
                called=self.caller.extension,
                path=dialog.path if dialog is not None else (),
                variables=dialog.variables if dialog is not None else None,
                transcript=summary["transcript"],
                turns=summary["turns"],
                keys_recorded=self.keys_recorded,
                recording=summary["recording"],
            )
            | self.outbound_record()
        )

    def outbound_record(self) -> dict[str, Any]:
        """What an outbound call adds to its record: the campaign, and who answered."""
        if self.outbound is None:
            return {}
        claim = self.outbound.claim
        amd = self.session.amd if self.session is not None else None
        return {
            "campaign": claim.campaign_name,
            "attempt": claim.attempt_number,
            "line": claim.contact.line,
            "amd": {"verdict": str(amd.verdict), "at_s": round(amd.at_s, 3),
                    "reasons": list(amd.reasons)} if amd else None,
        }  # fmt: skip

    def summary(self) -> dict[str, Any]:
        session = self.session
        transcript = session.transcript if session else []
        if not self.keys_recorded:
            transcript = [line.without_key() for line in transcript]
        return {
            "call_id": self.id,
            "caller": self.caller.caller_number,
            "script": self.script_name,
            "app": self.route.app,
            "asterisk": self.route.asterisk_id,
            "started": self.started,
            "end_reason": self.ending.text if self.ending else "",
            "result": self.result.value if self.result else "",
            "transcript": [line.as_dict() for line in transcript],
            "turns": [turn.as_dict() for turn in session.stats.turns] if session else [],
            "events": list(session.stats.events) if session else [],
            "rtp_port": self.endpoint.local_port if self.endpoint else None,
            "rtp": vars(self.endpoint.stats) if self.endpoint else {},
            # How late the bot's own packets left (the event loop's share of any gap).
            "pacer": vars(session.pacer.stats) if session else {},
            "recording": str(self.recorder.pcap_path) if self.recorder else None,
        }


def refused_record(channel_id: str, result: CallResult, why: str) -> dict[str, Any]:
    """The result record of a caller the bot did not serve."""
    return refused(channel_id, result.value, why, time.time())


class MediaArrivals:
    """Our externalMedia channels' StasisStart, awaited by the call that created each:
    ``POST /channels/externalMedia`` returns before the channel is in Stasis, and adding it to
    a bridge earlier fails with 422 "Channel not in Stasis application"."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Event] = {}

    def arrived(self, channel_id: str) -> bool:
        """Wake the call waiting for ``channel_id``; False if none is."""
        ready = self._waiting.get(channel_id)
        if ready is not None:
            ready.set()
        return ready is not None

    @contextlib.contextmanager
    def expect(self, channel_id: str) -> Iterator[asyncio.Event]:
        ready = self._waiting[channel_id] = asyncio.Event()
        try:
            yield ready
        finally:
            self._waiting.pop(channel_id, None)

    def pending(self) -> set[str]:
        """The channel ids awaited (keys name their Asterisk too: ``call_key``)."""
        return {key.rsplit("/", 1)[-1] for key in self._waiting}


async def open_media(
    call: ActiveCall,
    allocator: PortAllocator,
    codec: Codec,
    media: MediaConfig,
    arrivals: MediaArrivals,
) -> None:
    """Our RTP port, the call's bridge and an externalMedia channel streaming to the port,
    in Stasis, with the endpoint aimed at the address Asterisk sends from."""
    call.endpoint = await RtpEndpoint.open(
        allocator, media.bind_host, audio_payload_type=codec.payload_type
    )
    ari = call.route.ari
    # Ids are chosen before the requests, so a set-up cancelled mid-request (the caller
    # hung up) still knows what to remove.
    call.bridge_id = f"{BRIDGE_ID_PREFIX}{call.id}"
    await ari.create_bridge(
        "mixing", name=bridge_name(call.route.app, call.id), bridge_id=call.bridge_id
    )
    media_id = call.media_channel_id = f"{MEDIA_CHANNEL_PREFIX}{call.id}"
    with arrivals.expect(call_key(call.route, media_id)) as in_stasis:
        media_channel = await ari.external_media(
            call.route.app,
            f"{media.advertise_host}:{call.endpoint.local_port}",
            codec.name,
            channel_id=media_id,
        )
        try:
            await asyncio.wait_for(in_stasis.wait(), MEDIA_STASIS_TIMEOUT_S)
        except TimeoutError:
            raise MediaError(
                f"externalMedia channel {media_id} did not enter Stasis within "
                f"{MEDIA_STASIS_TIMEOUT_S:g} s"
            ) from None
    # Asterisk sends from (and expects our RTP at) this address; nothing else is accepted.
    host = await ari.get_variable(media_channel.id, "UNICASTRTP_LOCAL_ADDRESS")
    port = await ari.get_variable(media_channel.id, "UNICASTRTP_LOCAL_PORT")
    try:
        call.endpoint.set_remote(host, int(port))
    except ValueError:
        raise MediaError(f"Asterisk reported a bad RTP address {host!r}:{port!r}") from None


def outbound_ending(call: ActiveCall) -> dict[str, Any]:
    """How an outbound call ended, as the dialler is told (``Dialler.call_ended``)."""
    session = call.session
    amd = session.amd if session is not None else None
    return {
        "verdict": str(amd.verdict) if amd else None,
        "end_reason": call.ending.reason.value if call.ending else "",
        "message_played": session is not None and session.message_left,
        "do_not_call": session is not None and session.do_not_call,
    }


async def call_variables(call: ActiveCall, script: Script) -> dict[str, str]:
    """What scripts can template: caller_id, called and the channel variables they use; on
    an outbound call the number called is caller_id, and the contact's columns are there."""
    variables = {"caller_id": call.caller.caller_number, "called": call.caller.extension}
    if call.outbound is not None:
        variables |= {"caller_id": call.outbound.claim.contact.number, **call.outbound.variables}
    for name in sorted(script.channel_variables()):
        try:
            variables[f"channel.{name}"] = await call.route.ari.get_variable(call.id, name)
        except AriNotFoundError:
            variables[f"channel.{name}"] = ""  # unset on this channel
    return variables


async def bridge(call: ActiveCall) -> None:
    """Put the caller and our media channel in the call's bridge: the conversation starts."""
    assert call.bridge_id is not None and call.media_channel_id is not None
    await call.route.ari.add_channel(call.bridge_id, [call.id, call.media_channel_id])


def start_recording(call: ActiveCall, config: Config, in_progress: Collection[str]) -> None:
    """Record the call (``record.enabled`` or the script's ``record``): its RTP from now on;
    its keys and transcript once the recorder is one of its session's observers. A recording
    that cannot start is logged; the caller is served all the same."""
    endpoint = call.endpoint
    assert endpoint is not None and endpoint.remote is not None
    bot = (_ipv4_or(config.media.advertise_host, config.media.bind_host), endpoint.local_port)
    try:
        recorder = CallRecorder.start(
            config.record, call.id, endpoint.remote, bot, in_progress=in_progress
        )
    except (OSError, ValueError) as exc:
        log.error("call %s: not recorded: %s", call.id, exc)
        return
    call.recorder = recorder.attach(endpoint)
    log.info("call %s: recording to %s", call.id, recorder.pcap_path)


def _ipv4_or(*hosts: str) -> str:
    """The first IPv4 literal among ``hosts`` (a pcap names the bot by address), else 0.0.0.0."""
    for host in hosts:
        try:
            if isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address):
                return host
        except ValueError:
            continue
    return "0.0.0.0"


async def hand_off(call: ActiveCall, end: CallEnd) -> None:
    """Transfer: release our media first, then send the caller on into the dialplan. If
    Asterisk refuses, the call fails: its teardown hands the caller back with
    VOICEBOT_RESULT=error (or hangs up), never leaving them in Stasis with no one there."""
    transfer = end.transfer
    assert transfer is not None
    await release_media(call)
    # Set before the request: the caller's StasisEnd may arrive before its answer, and must
    # not be taken for a hangup.
    call.handed_off = True
    ari = call.route.ari
    try:
        # The script's context for the dialplan and the agent (`set:`). Only those: Asterisk
        # then runs the rest of this channel's dialplan with its "dangerous" functions (DB
        # writes, SHELL) refused, as it does after any ARI request on the channel.
        for name, value in transfer.variables:
            await ari.set_variable(call.id, name, value)
        if transfer.endpoint:
            # The dialplan context voicebot-dial dials ${VOICEBOT_DIAL} (asterisk-conf/).
            await ari.set_variable(call.id, "VOICEBOT_DIAL", transfer.endpoint)
            await ari.continue_in_dialplan(call.id, DIAL_CONTEXT, "s", 1)
        else:
            await ari.continue_in_dialplan(
                call.id, transfer.context, transfer.extension, transfer.priority, transfer.label
            )
    except AriNotFoundError as exc:
        call.handed_off = False
        # Asterisk answers 404 to a label its dialplan lacks, with the caller still there: a
        # refused transfer, not a vanished caller (if they did hang up, the hand-back says so).
        raise AriError(f"Asterisk refused the transfer to {transfer.target}: {exc}") from exc
    except AriError:
        call.handed_off = False
        raise
    call.ending = Ending(EndReason.TRANSFER, transfer.target)
    log.info("call %s: handed to the dialplan: %s", call.id, transfer.target)


async def hand_back(route: AriRoute, channel_id: str, result: CallResult) -> bool:
    """``VOICEBOT_RESULT=result``, then on with the dialplan after Stasis(); if Asterisk
    refuses, the caller is hung up rather than left in limbo. False if the caller is gone."""
    if route.lost:
        # The call's socket is gone: Asterisk itself continues the dialplan (or reconnects).
        return False
    try:
        await route.ari.set_variable(channel_id, RESULT_VARIABLE, result.value)
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


async def drop_media(route: AriRoute, media_id: str) -> None:
    """Hang up a media channel of ours that no call owns (its set-up was cancelled while the
    request creating it was on its way, and the teardown's hangup came first)."""
    log.warning("media channel %s entered %s with no call: hanging it up", media_id, route.app)
    try:
        await route.ari.hangup(media_id)
    except AriNotFoundError:
        pass
    except AriError as exc:
        log.warning("could not hang up media channel %s: %s", media_id, exc)


async def release_media(call: ActiveCall) -> None:
    """Hang up our externalMedia channel and destroy the bridge (each at most once)."""
    media, call.media_channel_id = call.media_channel_id, None
    bridge_id, call.bridge_id = call.bridge_id, None
    if call.route.lost:
        # Nothing can be sent any more; whoever Asterisk reconnects to cleans up (resync).
        return
    if media:
        await quietly(call.route.ari.hangup(media), call, "hang up media channel")
    if bridge_id:
        await quietly(call.route.ari.destroy_bridge(bridge_id), call, "destroy bridge")


async def release(call: ActiveCall) -> None:
    """However the call ended: our media released; a caller still there hung up, or handed
    back to the dialplan if the call failed; the port and the recording closed."""
    call.tearing_down = True
    await release_media(call)
    if call.caller_gone:
        if call.result is not CallResult.ERROR:
            call.result = CallResult.CALLER_HANGUP
    elif not call.handed_off:
        if call.result in HANDED_BACK:
            call.handed_off = await hand_back(call.route, call.id, call.result)
            if call.handed_off:
                log.info("call %s: handed back to the dialplan with %s=%s",
                         call.id, RESULT_VARIABLE, call.result)  # fmt: skip
        elif not call.route.lost:
            await quietly(call.route.ari.hangup(call.id), call, "hang up caller")
    close_local(call)
    stats = call.endpoint.stats if call.endpoint else None
    log.info(
        "call %s ended: %s (%d turns; rtp %s)",
        call.id,
        call.ending.text if call.ending else "done",
        len(call.session.stats.turns) if call.session else 0,
        vars(stats) if stats else "-",
    )


def close_local(call: ActiveCall) -> None:
    """Our own side of the call: the RTP port and the recording's files."""
    if call.endpoint is not None:
        call.endpoint.close()
    if call.recorder is not None:
        call.recorder.close()


async def quietly(coro: Coroutine[Any, Any, Any], call: ActiveCall | None = None,
                  what: str = "") -> None:  # fmt: skip
    """An ARI request whose target may be gone already (the normal race at hangup). Other
    failures are logged for a call's clean-up, raised for a resync's."""
    try:
        await coro
    except AriNotFoundError:
        pass
    except AriError as exc:
        if call is None:
            raise
        log.warning("call %s: could not %s: %s", call.id, what, exc)
