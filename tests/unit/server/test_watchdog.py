"""The watchdog finds ghost calls (no RTP) and runaway ones (too long) by their clocks alone."""

from __future__ import annotations

import time

from tests.support.controller import harness
from voicebot.config import CallsConfig
from voicebot.server.watchdog import overdue


async def test_ghost_and_runaway_calls_are_found_by_their_clocks() -> None:
    limits = CallsConfig(rtp_timeout_s=60, max_duration_s=600)
    async with harness([], calls=limits) as h:
        async with h.call() as (caller, _peer):
            call = h.controller.calls[caller]
            assert call.endpoint is not None
            now = time.monotonic()
            assert overdue(h.controller.calls.values(), limits, now) == []
            call.endpoint.last_heard_at = now - 61
            ((found, why),) = overdue(h.controller.calls.values(), limits, now)
            assert found is call and "no RTP" in why
            call.endpoint.last_heard_at = now
            call.started_monotonic = now - 601
            ((found, why),) = overdue(h.controller.calls.values(), limits, now)
            assert "max_duration_s" in why
        assert CallsConfig(rtp_timeout_s=0, max_duration_s=0).limit(2) == 24
