"""Typed views of the ARI JSON objects voicebot reads (channels and bridges).

Only the fields the bot uses are lifted into attributes; the full JSON stays in ``raw`` so a
caller that needs something rare (``connected``, ``language``…) does not force a model change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _require(data: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in data or data[key] is None:
        raise ValueError(f"{what}: missing field {key!r}")
    return data[key]


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    state: str
    caller_number: str = ""
    caller_name: str = ""
    context: str = ""
    extension: str = ""
    priority: int = 0
    # Excluded from equality: two snapshots of the same channel compare by their typed fields.
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Channel:
        obj = _mapping(data, "channel")
        # caller/dialplan are always present in Asterisk 22 output, but originate responses of
        # older versions and hand-written test JSON may omit them: they are not worth a failure.
        caller = _mapping(obj.get("caller") or {}, "channel.caller")
        dialplan = _mapping(obj.get("dialplan") or {}, "channel.dialplan")
        try:
            priority = int(dialplan.get("priority") or 0)
        except (TypeError, ValueError):
            raise ValueError(
                f"channel.dialplan: priority {dialplan.get('priority')!r} is not an integer"
            ) from None
        return cls(
            id=str(_require(obj, "id", "channel")),
            name=str(_require(obj, "name", "channel")),
            state=str(_require(obj, "state", "channel")),
            caller_number=str(caller.get("number") or ""),
            caller_name=str(caller.get("name") or ""),
            context=str(dialplan.get("context") or ""),
            extension=str(dialplan.get("exten") or ""),
            priority=priority,
            raw=dict(obj),
        )


@dataclass(frozen=True)
class Bridge:
    id: str
    bridge_type: str = ""
    channel_ids: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Bridge:
        obj = _mapping(data, "bridge")
        channels = obj.get("channels") or []
        if not isinstance(channels, list):
            raise ValueError("bridge: field 'channels' is not a list")
        return cls(
            id=str(_require(obj, "id", "bridge")),
            bridge_type=str(obj.get("bridge_type") or ""),
            channel_ids=tuple(str(c) for c in channels),
            raw=dict(obj),
        )
