"""Ghost and runaway calls: no RTP for ``calls.rtp_timeout_s``, or longer than
``calls.max_duration_s``. ``overdue`` decides from the clocks alone; ``watch`` ends them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from ..config import CallsConfig
from .leg import ActiveCall, EndReason

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 1.0


def overdue(
    calls: Iterable[ActiveCall], limits: CallsConfig, now: float
) -> list[tuple[ActiveCall, str]]:
    """The calls to end at ``now`` (monotonic), each with the reason."""
    due: list[tuple[ActiveCall, str]] = []
    for call in calls:
        if call.session is None or call.tearing_down:
            continue
        if limits.max_duration_s and now - call.started_monotonic > limits.max_duration_s:
            due.append((call, f"longer than calls.max_duration_s ({limits.max_duration_s:g} s)"))
        elif (limits.rtp_timeout_s and call.endpoint is not None
              and now - call.endpoint.last_heard_at > limits.rtp_timeout_s):  # fmt: skip
            due.append((call, f"no RTP for calls.rtp_timeout_s ({limits.rtp_timeout_s:g} s)"))
    return due


async def watch(
    calls: Callable[[], Iterable[ActiveCall]],
    limits: CallsConfig,
    interval_s: float = WATCH_INTERVAL_S,
) -> None:
    """Run for the bot's life: end ghost and runaway calls (a caller still there is handed
    back to the dialplan with VOICEBOT_RESULT=error)."""
    while True:
        await asyncio.sleep(interval_s)
        for call, why in overdue(calls(), limits, time.monotonic()):
            log.warning("call %s: ending it: %s", call.id, why)
            # The watchdog's reason replaces any earlier one: it is why the call ends now.
            call.ending = None
            call.stop(EndReason.OVERDUE, why, failed=True)
