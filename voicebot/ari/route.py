"""Where a call's ARI requests go, and which Stasis app its objects belong to.

A bot in ``ari.mode = "connect"`` has one route for all calls: its REST client and
``ari.app``. A worker in ``"accept"`` mode gets a route per call: the call's own WebSocket
(REST over it) and the per-call app Asterisk registered for it (``voicebot-pool:PJSIP/…``),
so the call's externalMedia channel and bridge live in that app and their events come back
on that socket.
"""

from __future__ import annotations

from dataclasses import dataclass

from .client import AriClient


@dataclass(eq=False)
class AriRoute:
    ari: AriClient
    app: str
    # Which Asterisk sent the call (its ``asterisk_id``, or what the URI's query named).
    asterisk_id: str = ""
    # The route's WebSocket closed: nothing more can be sent or heard on it.
    lost: bool = False
    # Its caller was handed back unserved (a per-call socket): no resync needed on it.
    refused: bool = False

    def __str__(self) -> str:
        where = f" on {self.asterisk_id}" if self.asterisk_id else ""
        return f"{self.app}{where}"
