"""The call timeline SVG: lanes, words, keys, one latency bar per turn, and nothing a caller
says can become markup."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from voicebot.server.console.timeline import MAX_WIDTH, latency_turns, timeline_svg

CAPTURES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "captures"
NS = "{http://www.w3.org/2000/svg}"


def transcript(name: str) -> list[dict[str, Any]]:
    lines = (CAPTURES / f"{name}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def having_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if name in (e.get("class") or "").split()]


def turn(n: int, **ms: float) -> dict[str, Any]:
    return {"turn": n, "text": "x", **ms}


TURN_1 = turn(
    1, total_ms=700, pause_ms=300, asr_ms=200, wait_ms=550, dialog_ms=20, tts_ms=120, send_ms=10
)
CALL: dict[str, Any] = {
    "started": 1_700_000_000.0,
    "result": "completed",
    "end_reason": "the bot hung up",
    "transcript": [
        {"who": "bot", "text": "Hello, say hours.", "t": 0.0, "state": "main"},
        {"who": "caller", "text": "hours", "t": 4.2, "state": "main", "intent": "hours"},
        {"who": "bot", "text": "Nine to five.", "t": 4.9, "state": "hours", "latency_ms": TURN_1},
        {"who": "caller", "text": "#5", "t": 7.0, "state": "hours"},
        {
            "who": "bot",
            "text": "Bye.",
            "t": 7.6,
            "state": "bye",
            "latency_ms": turn(
                2,
                total_ms=400,
                pause_ms=100,
                asr_ms=0,
                wait_ms=90,
                dialog_ms=250,
                tts_ms=40,
                send_ms=10,
            ),
        },
    ],
    "turns": [
        TURN_1,
        turn(
            2,
            total_ms=400,
            pause_ms=100,
            asr_ms=0,
            wait_ms=90,
            dialog_ms=250,
            tts_ms=40,
            send_ms=10,
        ),
    ],
}


def test_one_latency_bar_per_turn_split_by_stage_with_its_numbers() -> None:
    root = parse(timeline_svg(CALL))
    bars = having_class(root, "latency-bar")
    assert [bar.get("data-turn") for bar in bars] == ["1", "2"]
    stages = [[r.get("class") for r in bar.iter(f"{NS}rect")] for bar in bars]
    # Waiting beyond the pause and the decode is its own stage: 550 - 300 - 200 = 50 ms.
    assert stages[0] == [
        "stage pause",
        "stage asr",
        "stage waiting",
        "stage dialog",
        "stage tts",
        "stage send",
    ]
    # Turn 2 was taken before its decode came back (a key): no waiting, no 0 ms ASR.
    assert stages[1] == ["stage pause", "stage dialog", "stage tts", "stage send"]
    title = bars[0].find(f"{NS}title")
    assert title is not None and title.text is not None
    assert title.text.startswith(
        "turn 1 at 4.90 s: 700 ms (pause 300 ms, ASR 200 ms, waiting 50 ms"
    )
    widths = [float(r.get("width", 0)) for r in bars[0].iter(f"{NS}rect")]
    assert widths[0] == pytest.approx(widths[1] * 1.5, abs=0.2)  # 300 ms against 200 ms
    legend = having_class(root, "legend")[0]
    labels = [t.text for t in legend.iter(f"{NS}text")]
    assert labels == ["pause", "ASR", "waiting", "dialog", "TTS", "send"]


def test_latency_comes_from_the_transcript_when_turns_are_absent() -> None:
    root = parse(timeline_svg({"transcript": transcript("demo-hours-goodbye")}))
    assert [b.get("data-turn") for b in having_class(root, "latency-bar")] == ["1", "2"]
    assert len(having_class(root, "turn-mark")) == 2


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([], []),
        ([turn(1)], []),  # nothing measured
        ([turn(3, total_ms=120.5)], [(3, {}, 120.5)]),
        ([turn(1, pause_ms=100, asr_ms=50)], [(1, {"pause": 100.0, "asr": 50.0}, 150.0)]),
        # Not numbers, or not finite: left out; a record without a number gets its place.
        ([{"total_ms": "fast", "pause_ms": float("nan"), "send_ms": 3}], [(1, {"send": 3.0}, 3.0)]),
        ([turn(1, total_ms=5), turn(1, total_ms=9)], [(1, {}, 5.0)]),  # one bar per turn
        (["junk", None, turn(2, total_ms=1)], [(2, {}, 1.0)]),
    ],
)
def test_latency_turns(records: list[Any], expected: list[Any]) -> None:
    assert latency_turns({"turns": records}) == expected


def test_a_callers_words_never_become_markup() -> None:
    nasty = '<script>alert("x")</script> & ]]> <!-- \x00\x1b \ud800'
    call = {
        "transcript": [{"who": "caller", "text": nasty, "t": 1.0, "state": '"><svg onload=1>'}],
        "result": "<b>done</b>",
        "amd": {"verdict": "<i>machine</i>", "at_s": 0.5, "reasons": ["<script>"]},
        "webhooks": [{"t": 1.5, "ms": 80, "name": "<img src=x>"}],
    }
    svg = timeline_svg(call)
    root = parse(svg)  # well-formed despite control characters and a lone surrogate
    svg.encode("utf-8")  # and encodable as the response body
    tags = {e.tag.removeprefix(NS) for e in root.iter()}
    assert tags <= {"svg", "title", "rect", "text", "line", "circle", "g"}
    assert "<script" not in svg and "<svg onload" not in svg and "<img" not in svg
    texts = " ".join(e.text or "" for e in root.iter())
    assert '<script>alert("x")</script>' in texts  # shown as text, whole in the tooltip
    assert '"><svg onload=1>' in texts


def test_nothing_outside_the_picture_is_referenced() -> None:
    svg = timeline_svg(CALL, [(4.0, 4.6)], [(0.0, 1.2), (4.9, 6.0)])
    root = parse(svg)
    for element in root.iter():
        for name, value in element.attrib.items():
            assert "href" not in name and not name.startswith("on"), name
            if name != "xmlns":
                assert "url(" not in value and "://" not in value, (name, value)
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


def test_lanes_from_voice_segments_else_estimated_from_the_transcript() -> None:
    root = parse(timeline_svg(CALL, [(4.0, 4.6)], [(0.0, 1.2), (4.9, 6.0)]))
    caller, bot = having_class(root, "lane")
    assert (caller.get("class"), bot.get("class")) == ("lane caller", "lane bot")
    assert len(having_class(caller, "voice")) == 1 and len(having_class(bot, "voice")) == 2
    assert not having_class(root, "estimated") and not having_class(root, "overlap")
    root = parse(timeline_svg(CALL))
    caller, bot = having_class(root, "lane")
    # The key is no speech; it is a key cap.
    assert len(having_class(caller, "estimated")) == 1 and len(having_class(bot, "estimated")) == 3
    assert [k.findtext(f"{NS}text") for k in having_class(root, "key")] == ["5"]


def test_talking_over_each_other_is_shown() -> None:
    root = parse(timeline_svg(CALL, [(4.0, 5.2)], [(5.0, 6.0)]))
    (overlap,) = having_class(root, "overlap")
    assert overlap.findtext(f"{NS}title") == "both at once 5.00–5.20 s"


def test_a_recording_without_latencies_still_draws_its_keys() -> None:
    root = parse(timeline_svg({"transcript": transcript("bank-keys-balance")}))
    assert having_class(root, "latency-bar") == []
    assert len(having_class(root, "no-latency")) == 1
    assert "".join(k.findtext(f"{NS}text") or "" for k in having_class(root, "key")) == "142171"
    # record.keys = false: a key, which one not recorded.
    hidden = {"transcript": [{"who": "caller", "text": "#", "t": 2.0}]}
    assert [k.findtext(f"{NS}text") for k in having_class(parse(timeline_svg(hidden)), "key")] == [
        "?"
    ]


def test_an_empty_call_is_a_small_valid_picture() -> None:
    root = parse(timeline_svg({}))
    assert root.get("width") == "640"
    assert len(having_class(root, "lane")) == 2
    assert having_class(root, "latency-bar") == [] and having_class(root, "voice") == []
    assert having_class(root, "axis")


def test_amd_webhooks_and_barge_ins() -> None:
    call = {
        **CALL,
        "amd": {"verdict": "machine", "at_s": 2.4, "reasons": ["greeting longer than 3 s"]},
        "webhooks": [
            {"t": 4.5, "ms": 320, "name": "crm", "ok": True},
            {"t": 6.0, "seconds": 2.0, "name": "crm", "ok": False},
        ],
        "barge_ins": [1.1, {"t": 6.5}],
    }
    root = parse(timeline_svg(call))
    (amd,) = having_class(root, "amd")
    assert amd.findtext(f"{NS}title") == "AMD verdict machine at 2.40 s: greeting longer than 3 s"
    titles = [w.findtext(f"{NS}title") for w in having_class(root, "webhook")]
    assert titles == [
        "webhook crm at 4.50 s: answered after 320 ms",
        "webhook crm at 6.00 s: failed after 2000 ms",
    ]
    assert len(having_class(root, "barge-in")) == 2
    header = having_class(root, "header")[0].text or ""
    assert "AMD: machine" in header and "2 barge-ins" in header and "2 webhook calls" in header
    # Only counts known (the session's stats): said in the header, nothing drawn.
    root = parse(timeline_svg({**CALL, "barge_ins": 3, "webhooks": 1}))
    assert having_class(root, "barge-in") == [] and having_class(root, "webhook") == []
    assert "3 barge-ins · 1 webhook calls" in (having_class(root, "header")[0].text or "")


def test_width_grows_with_the_call_up_to_a_cap() -> None:
    def width(seconds: float) -> int:
        return int(parse(timeline_svg({"duration_s": seconds})).get("width") or 0)

    assert width(10) == 640  # a short call still readable
    assert width(10) < width(30) < width(45) <= MAX_WIDTH
    assert width(600) == MAX_WIDTH == width(3600)
    long_call = parse(timeline_svg({"duration_s": 600}))
    ticks = [t.text for t in having_class(long_call, "axis")[0].iter(f"{NS}text")]
    assert ticks[0] == "0 s" and ticks[-1] == "600 s" and len(ticks) <= 31
    absurd = parse(timeline_svg({"transcript": [{"who": "bot", "text": "x", "t": 1e12}]}))
    assert len(list(having_class(absurd, "axis")[0].iter(f"{NS}text"))) <= 30


def test_a_history_row_with_its_record_inside() -> None:
    row = {"call_id": "c1", "record": {**CALL, "duration_s": 9.0}}
    root = parse(timeline_svg(row))
    assert len(having_class(root, "latency-bar")) == 2
    assert (having_class(root, "header")[0].text or "").startswith("9.0 s")


def test_bad_values_are_skipped_not_fatal() -> None:
    call = {
        "transcript": [
            None,
            {"who": "caller", "text": 5, "t": "soon"},
            {"t": 1.0},
            {"who": "bot", "t": float("inf"), "text": "x"},
        ],
        "turns": "many",
        "amd": "machine",
        "webhooks": [{"t": None}, "x"],
        "barge_ins": "x",
        "duration_s": -4,
    }
    root = parse(timeline_svg(call))
    assert len(having_class(root, "words")) == 1  # the line with a time, as the bot's


def test_the_sessions_events_are_drawn_at_their_times() -> None:
    call = {
        **CALL,
        "events": [
            {"t": 1.1, "kind": "barge-in", "state": "main"},
            {"t": 3.0, "kind": "no-input", "state": "main"},
            {"t": 4.5, "kind": "webhook", "state": "lookup", "seconds": 0.32, "ok": True},
            {"t": 6.0, "kind": "webhook", "state": "lookup", "seconds": 2.0, "ok": False},
        ],
    }
    root = parse(timeline_svg(call))
    assert len(having_class(root, "barge-in")) == 1
    titles = [w.findtext(f"{NS}title") for w in having_class(root, "webhook")]
    assert titles == [
        "webhook at 4.50 s: answered after 320 ms",
        "webhook at 6.00 s: failed after 2000 ms",
    ]
