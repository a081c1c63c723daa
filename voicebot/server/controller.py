"""ARI events → calls: who is served (admission), the calls being served (the registry), and
each call's course from set-up to teardown.

For each caller entering ``Stasis(voicebot[,SCRIPT])`` the controller opens the caller's ARI
side (``leg``: bridge, externalMedia channel, port), answers, and runs a ``CallSession`` built
by the ``Runtime``. However the call ends (caller hangup, bot hangup, error), the media channel
is hung up, the bridge destroyed, the port released and the call's tasks awaited. A failing
call never disturbs the others.

A caller the bot will not or cannot serve (over ``calls.max_active``, shutting down, a set-up or
call that fails) is never dropped: the channel variable ``VOICEBOT_RESULT`` is set to ``busy`` or
``error`` and the channel continues in the dialplan, which decides what the caller hears.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Coroutine
from typing import Any

from ..ari import events
from ..ari.client import AriClient
from ..ari.models import Channel
from ..ari.route import AriRoute
from ..call.amd import AmdSettings
from ..config import Config
from ..dialog.library import ScriptLibrary
from ..errors import AriNotFoundError, VoicebotError
from ..logtext import caller_text
from ..media.codecs import get_codec
from ..media.endpoint import PortAllocator
from ..outbound.dialler import Dialler
from ..runtime import Runtime
from . import leg, resync
from .history import CallHistory
from .leg import RESULT_VARIABLE, ActiveCall, CallResult, EndReason
from .metrics import Metrics
from .results import NO_RESULTS, NoResults, ResultsOutbox

log = logging.getLogger(__name__)

RECENT_CALLS = 50


class CallController:
    def __init__(
        self,
        config: Config,
        ari: AriClient | None,
        scripts: ScriptLibrary,
        runtime: Runtime,
        allocator: PortAllocator,
        metrics: Metrics | None = None,
        results: ResultsOutbox | NoResults = NO_RESULTS,
    ) -> None:
        self.config = config
        self.results = results  # where every call's result record goes
        # ari.mode = "connect": every call goes through the one client; "accept": none, each
        # call arrives with its own route (see dispatch).
        self.route = AriRoute(ari, config.ari.app) if ari is not None else None
        self.scripts = scripts
        self.runtime = runtime
        self.allocator = allocator
        self.codec = get_codec(config.media.format)
        self.calls: dict[str, ActiveCall] = {}
        self.media_arrivals = leg.MediaArrivals()
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_CALLS)
        self.calls_total = self.calls_failed = self.calls_refused = 0
        self.metrics = metrics or Metrics()
        self.max_active = config.calls.limit(os.cpu_count())
        # Set on SIGTERM: new callers are handed back as busy while active calls finish.
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        # Hand-backs of refused callers and resync clean-ups: owned, awaited at close.
        self._background: set[asyncio.Task[object]] = set()
        # Campaigns' calls (set by the app when [outbound] is configured).
        self.outbound: Dialler | None = None
        self.history: CallHistory | None = None  # finished calls, for the console (app sets)
        self.resyncer = resync.Resync(self.calls, self.media_arrivals,
                                      lambda: self.metrics.call_ended(CallResult.ERROR),
                                      shared=self.route)  # fmt: skip

    # -- events ---------------------------------------------------------------------------

    def dispatch(self, event: events.Event, route: AriRoute | None = None) -> None:
        """Act on one ARI event; ``route`` is the socket it came on (accept mode)."""
        route = route or self.route
        if route is None:
            raise ValueError("CallController.dispatch: no ARI route for this event")
        try:
            self._handle(event, route)
        except Exception:  # one event must not end the feed every call depends on
            log.exception("ARI event %s could not be handled; skipped", event.type)

    def _handle(self, event: events.Event, route: AriRoute) -> None:
        if isinstance(event, events.StasisStart):
            media_id = event.channel.id
            if media_id.startswith(leg.MEDIA_CHANNEL_PREFIX):
                # Now it may join its bridge; none waits for it: its set-up was cancelled.
                if not self.media_arrivals.arrived(leg.call_key(route, media_id)):
                    self._in_background(leg.drop_media(route, media_id), f"drop-{media_id}")
                return
            self._start_call(event.channel, list(event.args), route)
        elif isinstance(event, events.StasisEnd | events.ChannelHangupRequest
                        | events.ChannelDestroyed):  # fmt: skip
            if isinstance(event, events.ChannelDestroyed) and self.outbound is not None:
                if self.outbound.channel_ended(event.channel.id, event.cause):
                    return  # a campaign's call that was never answered
            self._channel_gone(event.channel, route)
        elif isinstance(event, events.Dial) and self.outbound is not None:
            self.outbound.dial_status(event.peer.id, event.dialstatus)
        elif isinstance(event, events.ChannelDtmfReceived):
            call = self._call_on(route, event.channel.id)
            if call is not None and call.session is not None:
                call.session.key_pressed(event.digit, event.duration_ms)

    # -- admission and the registry -------------------------------------------------------

    def _call_on(self, route: AriRoute, channel_id: str) -> ActiveCall | None:
        """The call of ``channel_id`` on ``route`` (its socket, in accept mode)."""
        call = self.calls.get(leg.call_key(route, channel_id))
        return call if call is not None and call.route is route else None

    def _start_call(self, channel: Channel, args: list[str], route: AriRoute) -> None:
        if leg.call_key(route, channel.id) in self.calls:
            if self._call_on(route, channel.id) is None:  # not a repeated event: a twin
                why = "its channel id is in a call from an Asterisk of the same id (set "
                self._refuse(route, channel.id, CallResult.BUSY, why + "distinct systemnames)")
            return
        attempt = self.outbound.attempt_for(channel.id) if self.outbound else None
        # A campaign's call was placed within the dialler's share of the calls: it is served.
        if attempt is None and (self.draining or len(self.calls) >= self.max_active):
            active = f"{len(self.calls)} calls active (calls.max_active = {self.max_active})"
            why = "the bot is shutting down" if self.draining else active
            self._refuse(route, channel.id, CallResult.BUSY, why)
            return
        script_name = args[0] if args and args[0] else self.scripts.default
        call = ActiveCall(caller=channel, script_name=script_name, route=route,
                          keys_recorded=self.config.record.keys, outbound=attempt)  # fmt: skip
        self.calls[call.key] = call
        self._idle.clear()
        self.calls_total += 1
        call.task = asyncio.create_task(self._run_call(call), name=f"call-{channel.id}")
        call.task.add_done_callback(lambda task: self._call_task_done(call, task))
        # Caller numbers are personal data: shown only when the log is at DEBUG.
        log.info("call %s: from %s (%s) to %s, script %s, app %s", channel.id,
                 caller_text(channel.caller_number, log), channel.name, channel.extension,
                 script_name, route)  # fmt: skip

    def _call_task_done(self, call: ActiveCall, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: teardown failed", task.get_name(), exc_info=task.exception())
        if self.calls.get(call.key) is call:
            # Cancelled before it ever ran (StasisStart and the hangup read in one batch), or
            # its teardown was cut short: nothing may stay behind as a phantom call.
            leg.close_local(call)
            call.end(EndReason.CALLER_HANGUP)
            self._forget(call)

    def _forget(self, call: ActiveCall) -> None:
        self.calls.pop(call.key, None)
        if call.result is None:
            call.result = CallResult.CALLER_HANGUP if call.caller_gone else CallResult.COMPLETED
        self.recent.append(summary := call.summary())
        record = call.result_record(self.scripts.scripts.get(call.script_name))
        self.results.keep(record)
        if self.history is not None:
            self.history.keep(summary, record)
        if call.outbound is not None and self.outbound is not None:
            self._outbound_ended(call, record)
        stats = call.endpoint.stats if call.endpoint else None
        self.metrics.call_ended(call.result, vars(stats) if stats else None)
        if not self.calls:
            self._idle.set()

    def _outbound_ended(self, call: ActiveCall, record: dict[str, Any]) -> None:
        assert self.outbound is not None
        amd = call.session.amd if call.session is not None else None
        if amd is not None:
            self.metrics.amd_verdict(str(amd.verdict), amd.at_s)
        self.outbound.call_ended(call.id, **leg.outbound_ending(call), record=record)

    def room_for_outbound(self) -> int:
        """How many more calls the dialler may place: the calls' limit less the share kept
        for inbound callers, less the calls active (none while shutting down)."""
        if self.draining:
            return 0
        share = 1.0 - self.config.outbound.inbound_reserve
        return max(0, int(self.max_active * share) - len(self.calls))

    def _refuse(self, route: AriRoute, channel_id: str, result: CallResult, why: str) -> None:
        """Hand a caller the bot does not serve back to the dialplan, unanswered."""
        self.calls_refused += 1
        self.metrics.call_ended(result)
        self.results.keep(leg.refused_record(channel_id, result, why))
        if route is not self.route:  # the caller's own socket: nothing of ours to clean up
            route.refused = True
        log.warning("call %s: not served (%s): back to the dialplan with %s=%s",
                    channel_id, why, RESULT_VARIABLE, result)  # fmt: skip
        self._in_background(leg.hand_back(route, channel_id, result), f"hand-back-{channel_id}")

    def _in_background(self, coro: Coroutine[Any, Any, object], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _channel_gone(self, channel: Channel, route: AriRoute) -> None:
        call = self._call_on(route, channel.id)
        if call is None:
            ours = (c for c in self.calls.values() if c.route is route)
            call = next((c for c in ours if c.media_channel_id == channel.id), None)
            if call is not None and call.ending is None:
                # Our side of the call died, not the caller: back to the dialplan with an error.
                call.stop(EndReason.MEDIA_ENDED, failed=True)
            return
        if call.handed_off:
            return  # it left our app because we sent it on: not a hangup, nor a teardown
        call.caller_gone = True
        call.end(EndReason.CALLER_HANGUP)
        if not call.tearing_down:  # events our own teardown causes must not cancel it
            call.cancel()

    # -- one call -------------------------------------------------------------------------

    async def _run_call(self, call: ActiveCall) -> None:
        try:
            await self._set_up_and_converse(call)
        except asyncio.CancelledError:
            pass  # caller hung up (or shutdown): teardown below
        except AriNotFoundError as exc:
            call.end(EndReason.VANISHED, str(exc))
            call.caller_gone = True
            log.info("call %s: %s", call.id, call.ending.text if call.ending else "")
        except VoicebotError as exc:
            self.calls_failed += 1
            call.ending = leg.Ending(EndReason.ERROR, str(exc))
            call.result = CallResult.ERROR
            log.error("call %s failed: %s", call.id, exc)
        except Exception as exc:  # a bug must end this call only, never the process
            self.calls_failed += 1
            call.ending = leg.Ending(EndReason.CRASH, repr(exc))
            call.result = CallResult.ERROR
            log.exception("call %s crashed", call.id)
        finally:
            await leg.release(call)
            self._forget(call)

    async def _set_up_and_converse(self, call: ActiveCall) -> None:
        # Everything that can fail comes before the answer: a caller the bot cannot serve is
        # handed back unanswered, and the dialplan can still say "busy" or ring a person.
        script = self.scripts.get(call.script_name)
        await leg.open_media(call, self.allocator, self.codec, self.config.media,
                             self.media_arrivals)  # fmt: skip
        variables = await leg.call_variables(call, script)
        if call.outbound is None:  # (the dialler's calls are answered by the callee)
            await call.route.ari.answer(call.id)
        assert call.endpoint is not None
        if script.record if script.record is not None else self.config.record.enabled:
            recording = {c.recorder.stem for c in self.calls.values() if c.recorder is not None}
            leg.start_recording(call, self.config, in_progress=recording)
        await leg.bridge(call)
        call.session = self.runtime.new_session(
            call_id=call.id,
            endpoint=call.endpoint,
            codec=self.codec,
            script=script,
            variables=variables,
            observers=[self.metrics, *([call.recorder] if call.recorder else [])],
            amd=AmdSettings() if call.outbound is not None else None,
            ready=call.outbound.prepared if call.outbound is not None else None,
        )
        end = await call.session.run()
        call.ending = leg.Ending(EndReason(end.reason))
        call.result = CallResult.COMPLETED
        if end.transfer is not None:
            await leg.hand_off(call, end)
            call.result = CallResult.TRANSFERRED

    # -- after a reconnect, and per-call sockets (accept mode) ----------------------------

    async def connected(self, route: AriRoute | None = None) -> None:
        """An ARI WebSocket is (re)connected (``route``: a call's own, in accept mode)."""
        self._in_background(self.resync(route), "resync")

    def route_opened(self, route: AriRoute) -> None:
        """A call's own WebSocket registered its app (accept mode)."""
        self._in_background(self.resyncer.unless_served(route), f"resync-{route.app}")

    async def resync(
        self, route: AriRoute | None = None, grace_s: float = resync.RESYNC_GRACE_S
    ) -> None:
        route = route or self.route
        if route is not None:
            await self.resyncer.run(route, grace_s)

    def route_lost(self, route: AriRoute) -> None:
        """A call's own WebSocket closed (accept mode): ``Resync.route_lost``."""
        self.resyncer.route_lost(route)

    # -- the bot's life -------------------------------------------------------------------

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
            call.end(EndReason.SHUTDOWN)
            call.stop(EndReason.SHUTDOWN, failed=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._background, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        """/health's account of the calls, the ports and every loaded engine."""
        engines = self.runtime.services.engines()
        return {
            "active_calls": len(self.calls),
            "max_active": self.max_active,
            "draining": self.draining,
            "calls_total": self.calls_total,
            "calls_failed": self.calls_failed,
            "calls_refused": self.calls_refused,
            "ports_in_use": len(self.allocator.in_use),
            "engines": {name: engine.status() for name, engine in engines.items()},
        }
