"""After (re)connecting to ARI: calls whose caller is gone end, this app's leftovers are
removed (bridges, then media channels, then callers handed back), another app's are not."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.controller import harness
from tests.support.fakeari import FakeAri, handed_back
from voicebot.ari.client import AriClient
from voicebot.ari.models import Channel
from voicebot.ari.route import AriRoute
from voicebot.config import AriConfig
from voicebot.server import resync
from voicebot.server.leg import (
    BRIDGE_ID_PREFIX,
    MEDIA_CHANNEL_PREFIX,
    ActiveCall,
    CallResult,
    EndReason,
    MediaArrivals,
    bridge_name,
)
from voicebot.server.resync import Resync, stray_order


def active_call(caller_id: str, route: AriRoute, **fields: Any) -> ActiveCall:
    caller = Channel(id=caller_id, name=f"PJSIP/{caller_id}", state="Up")
    return ActiveCall(caller=caller, script_name="demo", route=route, **fields)


async def until_cancelled() -> None:
    await asyncio.Event().wait()


async def waiting_task() -> asyncio.Task[None]:
    """A call's task that runs until cancelled."""
    task = asyncio.create_task(until_cancelled())
    await asyncio.sleep(0)  # started, as a call's task is
    return task


async def finish(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def offline_route(app: str = "voicebot") -> AriRoute:
    """A route whose client never connects (the pure parts send nothing)."""
    return AriRoute(AriClient(AriConfig(app=app)), app)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri() as server:
        yield server


@pytest.fixture
async def route(fake: FakeAri) -> AsyncIterator[AriRoute]:
    async with AriClient(fake.config()) as ari:
        yield AriRoute(ari, fake.app)


def add_bridge(fake: FakeAri, bridge_id: str, name: str) -> None:
    fake.bridges[bridge_id] = {"id": bridge_id, "name": name, "channels": []}


def changes(fake: FakeAri) -> list[str]:
    """What the resync did to Asterisk, in order (its GETs left out)."""
    return [f"{method} {path}" for method, path, _ in fake.requests if method != "GET"]


# -- the pure parts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stray", "order"),
    [
        (("bridge", "b-1"), (0, "b-1")),
        (("bridge", f"{MEDIA_CHANNEL_PREFIX}1.1"), (0, f"{MEDIA_CHANNEL_PREFIX}1.1")),
        (("channel", f"{MEDIA_CHANNEL_PREFIX}1.1"), (1, f"{MEDIA_CHANNEL_PREFIX}1.1")),
        (("channel", "1.1"), (2, "1.1")),
        (("channel", "voicebot-1.1"), (2, "voicebot-1.1")),
    ],
)
def test_stray_order_ranks_bridges_then_media_channels_then_callers(
    stray: tuple[str, str], order: tuple[int, str]
) -> None:
    assert stray_order(stray) == order


def test_strays_sorted_leave_no_caller_bridged_to_dead_media() -> None:
    strays = [
        ("channel", "2.2"),
        ("channel", f"{MEDIA_CHANNEL_PREFIX}2.2"),
        ("bridge", f"{BRIDGE_ID_PREFIX}2.2"),
        ("channel", "1.1"),
        ("bridge", f"{BRIDGE_ID_PREFIX}1.1"),
    ]
    assert sorted(strays, key=stray_order) == [
        ("bridge", f"{BRIDGE_ID_PREFIX}1.1"),
        ("bridge", f"{BRIDGE_ID_PREFIX}2.2"),
        ("channel", f"{MEDIA_CHANNEL_PREFIX}2.2"),
        ("channel", "1.1"),
        ("channel", "2.2"),
    ]


@pytest.mark.parametrize(
    ("calls", "arriving", "owned"),
    [
        ({}, [], set()),
        ({"1.1": {}}, [], {"1.1"}),  # set up has not begun: only the caller
        (
            {"1.1": {"bridge_id": "voicebot-bridge-1.1"}},
            ["voicebot-media-1.1"],  # created, not in Stasis yet
            {"1.1", "voicebot-bridge-1.1", "voicebot-media-1.1"},
        ),
        (
            {
                "1.1": {
                    "bridge_id": "voicebot-bridge-1.1",
                    "media_channel_id": "voicebot-media-1.1",
                },
                "2.2": {"media_channel_id": "voicebot-media-2.2"},
            },
            [],
            {"1.1", "voicebot-bridge-1.1", "voicebot-media-1.1", "2.2", "voicebot-media-2.2"},
        ),
    ],
)
def test_owned_is_every_call_its_bridge_its_media_and_media_on_its_way(
    calls: dict[str, dict[str, str]], arriving: list[str], owned: set[str]
) -> None:
    route = offline_route()
    registry = {caller: active_call(caller, route, **ids) for caller, ids in calls.items()}
    arrivals = MediaArrivals()
    resyncer = Resync(registry, arrivals, on_stray_caller=lambda: None)
    with contextlib.ExitStack() as stack:
        for channel_id in arriving:
            stack.enter_context(arrivals.expect(channel_id))
        assert resyncer.owned() == owned
    assert resyncer.owned() == owned - set(arriving)


async def test_a_lost_route_stops_only_its_calls_still_running() -> None:
    lost, other = offline_route("voicebot-pool:a"), offline_route("voicebot-pool:b")
    running = active_call("1.1", lost, task=await waiting_task())
    tearing_down = active_call("2.2", lost, task=await waiting_task(), tearing_down=True)
    not_started = active_call("3.3", lost)
    elsewhere = active_call("4.4", other, task=await waiting_task())
    calls = {c.id: c for c in (running, tearing_down, not_started, elsewhere)}
    Resync(calls, MediaArrivals(), on_stray_caller=lambda: None).route_lost(lost)

    assert lost.lost and not other.lost
    assert running.ending is not None
    assert running.ending.text == "its ARI WebSocket closed mid-call"
    # A caller still there goes back to the dialplan with VOICEBOT_RESULT=error.
    assert running.result is CallResult.ERROR
    assert running.task is not None and running.task.cancelling()
    for untouched in (tearing_down, not_started, elsewhere):
        assert untouched.ending is None and untouched.result is None
        assert untouched.task is None or not untouched.task.cancelling()
    await finish(*(c.task for c in calls.values() if c.task is not None))


async def test_a_lost_route_keeps_the_first_reason_of_a_call_already_ending() -> None:
    route = offline_route()
    call = active_call("1.1", route, task=await waiting_task())
    call.end(EndReason.CALLER_HANGUP)
    Resync({call.id: call}, MediaArrivals(), on_stray_caller=lambda: None).route_lost(route)
    assert call.ending is not None and call.ending.text == "caller hangup"
    assert call.result is CallResult.ERROR
    assert call.task is not None
    await finish(call.task)


# -- against a fake Asterisk -------------------------------------------------------------


async def test_strays_of_this_app_are_removed_bridges_first_and_owned_objects_kept(
    fake: FakeAri, route: AriRoute
) -> None:
    # A call of ours, set up: its caller, media channel and bridge are all owned.
    live = await fake.add_caller("1.1")
    live_media = await fake.add_caller(f"{MEDIA_CHANNEL_PREFIX}1.1")
    add_bridge(fake, f"{BRIDGE_ID_PREFIX}1.1", bridge_name(fake.app, "1.1"))
    call = active_call(live, route, media_channel_id=live_media,
                       bridge_id=f"{BRIDGE_ID_PREFIX}1.1")  # fmt: skip
    # A crashed run's leftovers, and another app's bridge beside them.
    stray_caller = await fake.add_caller("9.9")
    stray_media = await fake.add_caller(f"{MEDIA_CHANNEL_PREFIX}9.9")
    add_bridge(fake, f"{BRIDGE_ID_PREFIX}9.9", bridge_name(fake.app, "9.9"))
    add_bridge(fake, "theirs", bridge_name("voicebot-b", "8.8"))
    strays_told: list[None] = []

    await Resync({live: call}, MediaArrivals(), lambda: strays_told.append(None)).run(
        route, grace_s=0
    )

    assert changes(fake) == [
        f"DELETE /bridges/{BRIDGE_ID_PREFIX}9.9",
        f"DELETE /channels/{stray_media}",
        f"POST /channels/{stray_caller}/variable",
        f"POST /channels/{stray_caller}/continue",
    ]
    assert handed_back(fake, stray_caller) == "error"
    assert len(strays_told) == 1
    assert set(fake.bridges) == {f"{BRIDGE_ID_PREFIX}1.1", "theirs"}
    assert {live, live_media} <= set(fake.channels)
    assert call.ending is None and not call.caller_gone


async def test_a_call_whose_caller_is_gone_ends_and_a_call_on_another_route_does_not(
    fake: FakeAri, route: AriRoute
) -> None:
    there = active_call(await fake.add_caller("1.1"), route, task=await waiting_task())
    gone = active_call("2.2", route, task=await waiting_task())  # not in Asterisk any more
    ending = active_call("3.3", route, task=await waiting_task(), tearing_down=True)
    other_route = offline_route("voicebot-b")
    elsewhere = active_call("4.4", other_route, task=await waiting_task())
    calls = {c.id: c for c in (there, gone, ending, elsewhere)}

    await Resync(calls, MediaArrivals(), on_stray_caller=lambda: None).run(route, grace_s=0)

    assert gone.caller_gone
    assert gone.ending is not None
    assert gone.ending.text == "caller channel gone (found on reconnecting to ARI)"
    assert gone.task is not None and gone.task.cancelling()
    for kept in (there, ending, elsewhere):
        assert kept.ending is None and not kept.caller_gone
        assert kept.task is not None and not kept.task.cancelling()
    await finish(*(c.task for c in calls.values() if c.task is not None))


async def test_without_calls_on_the_route_the_channels_are_not_listed(
    fake: FakeAri, route: AriRoute
) -> None:
    await Resync({}, MediaArrivals(), on_stray_caller=lambda: None).run(route, grace_s=0)
    assert [path for _, path, _ in fake.requests] == [f"/applications/{fake.app}"]


async def test_the_bot_s_own_connection_looks_through_every_bridge(
    fake: FakeAri, route: AriRoute
) -> None:
    resyncer = Resync({}, MediaArrivals(), on_stray_caller=lambda: None, shared=route)
    await resyncer.run(route, grace_s=0)
    assert [path for _, path, _ in fake.requests] == [f"/applications/{fake.app}", "/bridges"]


async def test_channels_that_cannot_be_listed_leave_everything_as_it_was(
    fake: FakeAri, route: AriRoute, caplog: pytest.LogCaptureFixture
) -> None:
    call = active_call("2.2", route, task=await waiting_task())  # gone, but we cannot know
    stray = await fake.add_caller("9.9")
    fake.fail_next(500, "Internal Server Error", method="GET", path_contains="/channels")
    await Resync({call.id: call}, MediaArrivals(), on_stray_caller=lambda: None).run(route, 0)
    assert "resync: cannot list channels" in caplog.text
    assert call.ending is None and not call.caller_gone
    assert changes(fake) == [] and stray in fake.channels
    assert call.task is not None
    await finish(call.task)


async def test_an_app_that_cannot_be_read_is_logged_and_nothing_is_removed(
    fake: FakeAri, route: AriRoute, caplog: pytest.LogCaptureFixture
) -> None:
    await fake.add_caller("9.9")
    fake.fail_next(500, "Internal Server Error", path_contains="/applications/")
    with caplog.at_level(logging.WARNING):
        await Resync({}, MediaArrivals(), on_stray_caller=lambda: None).run(route, grace_s=0)
    assert "resync: could not check for voicebot's orphaned channels/bridges" in caplog.text
    assert changes(fake) == []


@pytest.mark.parametrize(
    ("served", "lost", "handed"),
    [(False, False, "error"), (True, False, None), (False, True, None)],
)
async def test_a_route_without_a_caller_is_resynced_unless_served_or_lost(
    fake: FakeAri,
    route: AriRoute,
    monkeypatch: pytest.MonkeyPatch,
    served: bool,
    lost: bool,
    handed: str | None,
) -> None:
    """Accept mode: a call's socket registered, and no StasisStart followed (Asterisk
    reconnected a call whose worker died): its caller goes back to the dialplan."""
    monkeypatch.setattr(resync, "ROUTE_STASIS_WAIT_S", 0.0)
    caller = await fake.add_caller("1.1")
    calls = {caller: active_call(caller, route)} if served else {}
    route.lost = lost
    await Resync(calls, MediaArrivals(), on_stray_caller=lambda: None).unless_served(route)
    assert handed_back(fake, caller) == handed


# -- through the controller ---------------------------------------------------------------


async def test_resync_cleans_up_only_our_leftovers_and_ends_calls_whose_channel_died() -> None:
    async with harness([]) as h:
        async with h.call() as (live, _peer):
            # Leftovers of a crashed run of this bot, and another bot's bridge beside them.
            stray_caller = await h.fake.add_caller()
            await h.wait_until(lambda: stray_caller in h.controller.calls)
            h.controller.calls.pop(stray_caller)  # as if this run never knew it
            h.fake.bridges["old"] = {
                "id": "old",
                "name": bridge_name("voicebot", "1.1"),
                "channels": [],
            }
            h.fake.bridges["theirs"] = {"id": "theirs", "name": bridge_name("voicebot-b", "2.2"),
                                        "channels": []}  # fmt: skip
            # ... and a call whose caller vanished while the WebSocket was down.
            h.fake.channels.pop(live)
            await h.controller.resync()
            assert "old" not in h.fake.bridges and "theirs" in h.fake.bridges
            assert handed_back(h.fake, stray_caller) == "error"
            await h.wait_until(lambda: live not in h.controller.calls)
            assert "gone" in next(c["end_reason"] for c in h.controller.recent
                                  if c["call_id"] == live)  # fmt: skip
