"""After (re)connecting to ARI: make our calls and Asterisk agree again.

Calls whose caller channel is gone (Asterisk restarted, or the hangup came while the WebSocket
was down) are ended. Channels in our app with no call behind them (a crashed run's callers and
media channels, or in accept mode a call whose worker died) are handed back or hung up, and
our app's bridges without a call destroyed. Only this app's objects are touched: another bot
on the same Asterisk keeps its calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..ari.models import Bridge
from ..ari.route import AriRoute
from ..errors import AriError, AriNotFoundError
from .leg import (
    BRIDGE_ID_PREFIX,
    MEDIA_CHANNEL_PREFIX,
    ActiveCall,
    CallResult,
    EndReason,
    MediaArrivals,
    bridge_app,
    hand_back,
    quietly,
)

log = logging.getLogger(__name__)

# A per-call socket's StasisStart follows its ApplicationRegistered within 0.5 s (Stasis()
# polls for the connection that often); none after this long: a reconnect of a call in progress.
ROUTE_STASIS_WAIT_S = 1.0
# A channel found in our app at resync with no call behind it is acted on only if it is still
# there this much later (its StasisStart may simply not have been read yet).
RESYNC_GRACE_S = 1.0

Stray = tuple[str, str]  # ("bridge" | "channel", id)


def stray_order(stray: Stray) -> tuple[int, str]:
    """Bridges first, then our media channels, then callers: a caller handed back must not
    stay bridged to a dead call's media for a moment."""
    kind, object_id = stray
    rank = 0 if kind == "bridge" else 1 if object_id.startswith(MEDIA_CHANNEL_PREFIX) else 2
    return rank, object_id


class Resync:
    """Resyncs one bot's registry of ``calls`` (by caller channel id) with Asterisk."""

    def __init__(
        self,
        calls: Mapping[str, ActiveCall],
        arrivals: MediaArrivals,
        on_stray_caller: Callable[[], None],
        shared: AriRoute | None = None,
    ) -> None:
        self.calls = calls
        self.arrivals = arrivals
        # The bot's one connection (connect mode), over HTTP: there the whole list of bridges
        # is asked for; a per-call socket asks only for its app's own objects.
        self.shared = shared
        # Told before a caller with no call behind it is handed back (the bot's metrics).
        self.on_stray_caller = on_stray_caller

    def owned(self) -> set[str]:
        """Every channel and bridge a call of ours owns, or is about to."""
        owned = {call.id for call in self.calls.values()} | self.arrivals.pending()
        for call in self.calls.values():
            owned |= {i for i in (call.media_channel_id, call.bridge_id) if i}
        return owned

    async def unless_served(self, route: AriRoute) -> None:
        """A call's own socket registered its app (accept mode). Its caller's StasisStart
        normally follows at once; when none comes (Asterisk reconnected a call whose worker
        died), the app's leftovers are resynced: the caller goes back to the dialplan."""
        await asyncio.sleep(ROUTE_STASIS_WAIT_S)
        served = route.refused or any(c.route is route for c in self.calls.values())
        if not route.lost and not served:
            # The wait was the grace already: the caller should hear the fallback soon.
            await self.run(route, grace_s=0.0)

    def route_lost(self, route: AriRoute) -> None:
        """A call's own WebSocket closed (accept mode): its calls cannot be controlled any
        more. They end here; Asterisk continues the dialplan or reconnects (possibly to
        another worker, whose resync hands the caller back)."""
        route.lost = True
        for call in list(self.calls.values()):
            if call.route is route and call.task is not None and not call.tearing_down:
                call.stop(EndReason.SOCKET_CLOSED, failed=True)
                log.warning("call %s: %s", call.id, EndReason.SOCKET_CLOSED.value)

    async def run(self, route: AriRoute, grace_s: float = RESYNC_GRACE_S) -> None:
        """After (re)connecting ``route``: end our calls whose caller is gone, then remove
        the app's channels and bridges that no call owns (still there after ``grace_s``)."""
        mine = [c for c in self.calls.values() if c.route is route]
        try:
            live = {channel.id for channel in await route.ari.list_channels()} if mine else set()
        except AriError as exc:
            log.warning("resync: cannot list channels: %s", exc)
            return
        for call in mine:
            if call.id not in live and not call.tearing_down and call.task is not None:
                call.caller_gone = True
                call.end(EndReason.GONE_AT_RESYNC)
                log.warning("call %s: %s", call.id, EndReason.GONE_AT_RESYNC.value)
                call.cancel()
        try:
            every_bridge = route is self.shared
            strays = await _strays(route, self.owned, every_bridge)
            if strays and grace_s:
                await asyncio.sleep(grace_s)
                strays &= await _strays(route, self.owned, every_bridge)
            for kind, object_id in sorted(strays, key=stray_order):
                await _remove_stray(route, kind, object_id, self.on_stray_caller)
        except AriError as exc:
            log.warning("resync: could not check for %s's orphaned channels/bridges: %s",
                        route.app, exc)  # fmt: skip


async def _strays(route: AriRoute, owned: Callable[[], set[str]], every_bridge: bool) -> set[Stray]:
    """Our app's channels and bridges that no call of ours owns. ``every_bridge``: look
    through the Asterisk's whole list of bridges (over HTTP); else only the app's own objects
    are asked for: over a per-call socket the whole list could pass the frame limit (~170
    bridges in 64 KiB) and close the socket."""
    subscribed = await route.ari.application(route.app)
    channel_ids = [str(c) for c in subscribed.get("channel_ids", [])]
    if every_bridge:
        bridges = {bridge.id: bridge for bridge in await route.ari.list_bridges()}
    else:
        bridges = await _app_bridges(route, subscribed, channel_ids)
    # Owned as of the answers: events read while waiting for them (a late StasisStart) count.
    ours = owned()
    strays = {("channel", c) for c in channel_ids if c not in ours}
    for bridge_id, bridge in bridges.items():
        if bridge_app(str(bridge.raw.get("name", ""))) == route.app and bridge_id not in ours:
            strays.add(("bridge", bridge_id))
    return strays


async def _app_bridges(
    route: AriRoute, subscribed: Mapping[str, Any], channel_ids: list[str]
) -> dict[str, Bridge]:
    """The app's bridges, and the bridge each of its channels names (voicebot-bridge-<caller
    id>), one ``GET /bridges/{id}`` each: a bridge whose channels left is not always
    subscribed."""
    candidates = {str(b) for b in subscribed.get("bridge_ids", [])}
    candidates |= {BRIDGE_ID_PREFIX + c.removeprefix(MEDIA_CHANNEL_PREFIX) for c in channel_ids}
    bridges: dict[str, Bridge] = {}
    for bridge_id in sorted(candidates):
        try:
            bridges[bridge_id] = await route.ari.get_bridge(bridge_id)
        except AriNotFoundError:
            continue
    return bridges


async def _remove_stray(
    route: AriRoute, kind: str, object_id: str, on_stray_caller: Callable[[], None]
) -> None:
    if kind == "bridge":
        log.warning("resync: destroying orphaned bridge %s", object_id)
        await quietly(route.ari.destroy_bridge(object_id))
    elif object_id.startswith(MEDIA_CHANNEL_PREFIX):
        log.warning("resync: hanging up orphaned media channel %s", object_id)
        await quietly(route.ari.hangup(object_id))
    else:
        log.warning("resync: caller %s is in %s with no call: back to the dialplan",
                    object_id, route.app)  # fmt: skip
        on_stray_caller()
        await hand_back(route, object_id, CallResult.ERROR)
