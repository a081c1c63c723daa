"""Typed views of ARI's JSON: the fields the bot reads, forgiving where Asterisk versions
differ, and a ValueError naming what is wrong where the JSON cannot be a channel or bridge."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fakeari import FakeAri
from voicebot.ari.models import Bridge, Channel

MINIMAL = {"id": "1.1", "name": "PJSIP/1000-00000001", "state": "Up"}


async def test_a_caller_as_the_fake_asterisk_sends_it() -> None:
    async with FakeAri() as fake:
        caller = await fake.add_caller(
            "1.1",
            caller_number="5550100",
            caller_name="Alice",
            exten="150",
            context="from-internal",
        )
        channel = Channel.from_json(fake.channels[caller])
    assert (channel.id, channel.state, channel.caller_number, channel.caller_name) == (
        "1.1",
        "Ring",
        "5550100",
        "Alice",
    )
    assert (channel.context, channel.extension, channel.priority) == ("from-internal", "150", 1)
    assert channel.name.startswith("PJSIP/1000-")


@pytest.mark.parametrize(
    "extra",
    [
        {},  # an originate answer of an older Asterisk: no caller, no dialplan
        {"caller": None, "dialplan": None},
        {"caller": {}, "dialplan": {}},
        {"caller": {"number": None, "name": None}, "dialplan": {"priority": None}},
    ],
)
def test_a_channel_without_caller_or_dialplan_has_empty_ones(extra: dict[str, Any]) -> None:
    channel = Channel.from_json({**MINIMAL, **extra})
    assert channel == Channel("1.1", "PJSIP/1000-00000001", "Up")
    assert (channel.caller_number, channel.context, channel.extension, channel.priority) == (
        "",
        "",
        "",
        0,
    )


def test_values_are_read_as_the_types_the_bot_uses() -> None:
    channel = Channel.from_json(
        {
            "id": 17,
            "name": "Local/x",
            "state": "Up",
            "caller": {"number": 5550100},
            "dialplan": {"exten": 100, "priority": "3"},
        }
    )
    assert (channel.id, channel.caller_number, channel.extension, channel.priority) == (
        "17",
        "5550100",
        "100",
        3,
    )


@pytest.mark.parametrize("field", ["id", "name", "state"])
def test_a_null_required_field_is_missing(field: str) -> None:
    with pytest.raises(ValueError, match=f"channel: missing field '{field}'"):
        Channel.from_json({**MINIMAL, field: None})


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (["1.1"], "channel: expected a JSON object, got list"),
        ("1.1", "channel: expected a JSON object, got str"),
        ({**MINIMAL, "caller": "5550100"}, "channel.caller: expected a JSON object, got str"),
        ({**MINIMAL, "dialplan": [1]}, "channel.dialplan: expected a JSON object, got list"),
        (
            {**MINIMAL, "dialplan": {"priority": "first"}},
            "channel.dialplan: priority 'first' is not an integer",
        ),
    ],
)
def test_json_that_cannot_be_a_channel_says_why(data: Any, problem: str) -> None:
    with pytest.raises(ValueError) as refused:
        Channel.from_json(data)
    assert str(refused.value) == problem


def test_the_raw_json_is_kept_but_two_snapshots_compare_by_their_fields() -> None:
    data = {**MINIMAL, "language": "en", "creationtime": "2024-05-01T12:00:00.000+0000"}
    first = Channel.from_json(data)
    later = Channel.from_json({**data, "creationtime": "2024-05-01T12:00:09.000+0000"})
    assert first == later
    assert first.raw["language"] == "en"
    assert "language" not in repr(first)
    data["language"] = "ko"  # the caller's dict is not the channel's
    assert first.raw["language"] == "en"


@pytest.mark.parametrize(
    ("data", "bridge"),
    [
        ({"id": "b1"}, Bridge("b1")),
        ({"id": "b1", "channels": None, "bridge_type": None}, Bridge("b1")),
        (
            {"id": "b1", "bridge_type": "mixing", "channels": ["1.1", 17]},
            Bridge("b1", "mixing", ("1.1", "17")),
        ),
    ],
)
def test_a_bridge_from_json(data: dict[str, Any], bridge: Bridge) -> None:
    parsed = Bridge.from_json(data)
    assert parsed == bridge
    assert parsed.raw == data


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"id": "b1", "channels": "1.1"}, "bridge: field 'channels' is not a list"),
        ({"id": None}, "bridge: missing field 'id'"),
        ([], "bridge: expected a JSON object, got list"),
    ],
)
def test_json_that_cannot_be_a_bridge_says_why(data: Any, problem: str) -> None:
    with pytest.raises(ValueError) as refused:
        Bridge.from_json(data)
    assert str(refused.value) == problem


# --- models -------------------------------------------------------------------------------


def test_channel_from_json_reads_asterisk_fields() -> None:
    data = {
        "id": "1714557600.12",
        "name": "PJSIP/1000-00000003",
        "state": "Ring",
        "protocol_id": "abc@host",
        "caller": {"name": "Alice", "number": "1000"},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "from-internal",
            "exten": "100",
            "priority": 2,
            "app_name": "Stasis",
            "app_data": "voicebot,demo",
        },
        "creationtime": "2024-05-01T12:00:00.123+0000",
        "language": "en",
    }
    channel = Channel.from_json(data)
    assert channel == Channel(
        "1714557600.12", "PJSIP/1000-00000003", "Ring", "1000", "Alice", "from-internal", "100", 2
    )
    assert channel.raw["protocol_id"] == "abc@host"


@pytest.mark.parametrize("missing", ["id", "name", "state"])
def test_channel_from_json_names_missing_field(missing: str) -> None:
    data = {"id": "1", "name": "PJSIP/x", "state": "Up"}
    del data[missing]
    with pytest.raises(ValueError, match=repr(missing)):
        Channel.from_json(data)


def test_bridge_from_json() -> None:
    bridge = Bridge.from_json({"id": "b1", "bridge_type": "mixing", "channels": ["c1", "c2"]})
    assert bridge == Bridge("b1", "mixing", ("c1", "c2"))
    with pytest.raises(ValueError, match="'id'"):
        Bridge.from_json({"bridge_type": "mixing"})
