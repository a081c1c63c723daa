"""A call's timeline as one SVG picture, for someone asking "was the bot slow, did it cut me off".

Above a time axis in seconds: a lane of the caller's voice and one of the bot's speech (from
the recording's voice segments, else estimated from the transcript), the transcript's words,
keys, barge-ins, webhook calls and the AMD verdict. Below it, one bar per answered turn: where
the time from the caller's last word to the bot's first packet went, stage by stage.

Pure: a call's summary or result record in, SVG text out. The SVG stands alone (no scripts,
no external references, presentation attributes rather than a stylesheet that would leak into
the page) and every text in it is escaped: callers' words are untrusted input.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...logtext import is_key

Segments = Sequence[tuple[float, float]]
Turn = tuple[int, dict[str, float], float]  # number, stage → ms, total ms
# (key, label, colour) in the order the stages happen: the pause noticed, the decode, waiting
# for the turn to be taken, the dialog, the synthesis up to the first audio, the first packet.
STAGES = (
    ("pause", "pause", "#9aa5b1"),
    ("asr", "ASR", "#4c78a8"),
    ("waiting", "waiting", "#d4c6a1"),
    ("dialog", "dialog", "#f58518"),
    ("tts", "TTS", "#54a24b"),
    ("send", "send", "#b279a2"),
)
# The lanes' colours are the transcript's (console.css), unlike any stage's, so a lane is never
# read as a stage.
COLOURS = {"caller": "#a0522d", "bot": "#2a9d8f", "alert": "#d62728", "amd": "#6a3d9a"}
MIN_WIDTH, MAX_WIDTH, PX_PER_S = 640, 2400, 48
LEFT, RIGHT = 78, 24  # room for the lanes' names, and for the last tick's label
TICK_STEPS_S = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
# No call lasts a day: a time beyond it is a bad record, not a reason for a million ticks.
MAX_DURATION_S = 86400.0
MIN_TICK_PX = 70
CHAR_PX = 6.2  # an average character of the 11 px sans-serif text
# Without a recording, how long a line took to say is guessed from its length.
CHARS_PER_S = 15.0
MIN_SPOKEN_S = 0.5
ROW_PX, LANE_PX = 18, 20
CALLER_Y, BOT_Y = 52, 78
EVENTS_Y = BOT_Y + LANE_PX + 40
AXIS_Y = EVENTS_Y + 40
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _esc(value: object) -> str:
    """Text fit for XML content and attributes: escaped, characters XML cannot hold replaced."""
    return html.escape(_NOT_XML.sub("\ufffd", str(value)), quote=True)


def _el(tag: str, content: str = "", **attrs: object) -> str:
    """An element; ``class_`` is class, ``fill_opacity`` fill-opacity. ``content`` is markup:
    escape text before passing it."""

    def value(v: object) -> str:
        return _esc(round(v, 1) if isinstance(v, float) else v)

    names = "".join(f' {k.rstrip("_").replace("_", "-")}="{value(v)}"' for k, v in attrs.items())
    return f"<{tag}{names}>{content}</{tag}>" if content else f"<{tag}{names}/>"


def _title(text: str) -> str:
    """A tooltip, the first child of the element it describes."""
    return f"<title>{_esc(text)}</title>" if text else ""


def _text(text: object, x: float, y: float, **attrs: object) -> str:
    return _el("text", _esc(text), x=x, y=y, **attrs)


def _rect(
    x: float, y: float, w: float, h: float, fill: str, title: str = "", **attrs: object
) -> str:
    return _el("rect", _title(title), x=x, y=y, width=w, height=h, fill=fill, **attrs)


def _vline(x: float, y1: float, y2: float, stroke: str, title: str = "", **attrs: object) -> str:
    return _el("line", _title(title), x1=x, x2=x, y1=y1, y2=y2, stroke=stroke, **attrs)


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "…"


def _is_key(text: str) -> bool:
    return is_key(text) or text.strip() == "#"  # "#": a key, which one not recorded


def _lines(call: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The transcript's lines that have a time, in time order, with a speaker and a text."""
    found = []
    for line in call.get("transcript") or ():
        if isinstance(line, Mapping) and (t := _num(line.get("t"))) is not None:
            who = "caller" if line.get("who") == "caller" else "bot"
            found.append({**line, "who": who, "t": max(0.0, t), "text": str(line.get("text", ""))})
    return sorted(found, key=lambda line: line["t"])


def latency_turns(call: Mapping[str, Any]) -> list[Turn]:
    """(turn number, stage → ms, total ms) of each turn with latency: from ``turns``, else
    from the transcript's answers. "waiting" is what taking the turn took beyond the pause
    and the decode; stages of 0 ms or unknown are left out."""
    records = [t for t in call.get("turns") or () if isinstance(t, Mapping)]
    if not records:
        records = [
            line["latency_ms"]
            for line in _lines(call)
            if isinstance(line.get("latency_ms"), Mapping)
        ]
    turns: dict[int, Turn] = {}
    for index, record in enumerate(records, 1):
        number = _num(record.get("turn"))
        n = int(number) if number is not None else index
        names = ("pause", "asr", "dialog", "tts", "send", "wait", "total")
        ms = {name: _num(record.get(f"{name}_ms")) for name in names}
        if (wait := ms["wait"]) is not None:
            ms["waiting"] = wait - (ms["pause"] or 0.0) - (ms["asr"] or 0.0)
        stages = {key: v for key, *_ in STAGES if (v := ms.get(key)) is not None and v > 0}
        total = ms["total"] if ms["total"] is not None else sum(stages.values())
        if (stages or ms["total"] is not None) and n not in turns:
            turns[n] = (n, stages, total)
    return list(turns.values())


def _estimated(lines: Sequence[Mapping[str, Any]], who: str, end_s: float) -> Segments:
    """Where ``who`` spoke, guessed from the transcript: the bot from each line's time on,
    the caller up to it (a caller's line is written once the words are heard)."""
    spoken = [line for line in lines if line["who"] == who and not _is_key(line["text"])]
    segments = []
    for n, line in enumerate(spoken):
        length = max(MIN_SPOKEN_S, len(line["text"]) / CHARS_PER_S)
        if who == "bot":
            stop = spoken[n + 1]["t"] if n + 1 < len(spoken) else end_s
            segments.append((line["t"], min(line["t"] + length, stop)))
        else:
            segments.append((max(0.0, line["t"] - length), line["t"]))
    return segments


def _by_kind(events: object) -> dict[str, list[Mapping[str, Any]]]:
    """A summary's ``events`` (call.session.CallStats) as the lists the picture reads."""
    if not isinstance(events, Sequence) or isinstance(events, str):
        return {}
    kinds = {"barge-in": "barge_ins", "webhook": "webhooks"}
    found: dict[str, list[Mapping[str, Any]]] = {}
    for event in events:
        if isinstance(event, Mapping) and event.get("kind") in kinds:
            found.setdefault(kinds[event["kind"]], []).append(event)
    return found


def _events(call: Mapping[str, Any], key: str) -> tuple[list[Mapping[str, Any]], int]:
    """Events (each a time, or a mapping with "t") and how many; a bare number is a count."""
    value = call.get(key)
    if (count := _num(value)) is not None:
        return [], int(count)
    if not isinstance(value, Sequence) or isinstance(value, str):
        return [], 0
    events = [e if isinstance(e, Mapping) else {"t": e} for e in value]
    timed = [e for e in events if _num(e.get("t")) is not None]
    return timed, len(timed)


@dataclass(frozen=True)
class _Frame:
    """The picture's width and its time scale."""

    duration: float
    width: int

    @property
    def scale(self) -> float:
        return (self.width - LEFT - RIGHT) / self.duration

    def x(self, t: float) -> float:
        return LEFT + max(0.0, min(t, self.duration)) * self.scale

    def span(self, start: float, end: float) -> float:
        return max(1.0, self.x(end) - self.x(start))


def _lanes(frame: _Frame, lines: list[dict[str, Any]], voice: Mapping[str, Segments]) -> list[str]:
    out = []
    for who, y in (("caller", CALLER_Y), ("bot", BOT_Y)):
        guess = "" if voice[who] else " (estimated from the transcript)"
        parts = [_text(who, 8, y + 14), _rect(LEFT, y, frame.width - LEFT - RIGHT, LANE_PX, "#eee")]
        for start, end in voice[who] or _estimated(lines, who, frame.duration):
            title = f"{who} {start:.2f}–{end:.2f} s{guess}"
            parts.append(
                _rect(frame.x(start), y + 2, frame.span(start, end), LANE_PX - 4, COLOURS[who],
                      title, class_="voice estimated" if guess else "voice",
                      fill_opacity=0.45 if guess else 0.85)
            )  # fmt: skip
        out.append(_el("g", "".join(parts), class_=f"lane {who}"))
    for start, end in ((max(a, c), min(b, d)) for a, b in voice["caller"] for c, d in voice["bot"]):
        if start < end:
            title = f"both at once {start:.2f}–{end:.2f} s"
            out.append(
                _rect(frame.x(start), CALLER_Y, frame.span(start, end), BOT_Y + LANE_PX - CALLER_Y,
                      COLOURS["alert"], title, class_="overlap", fill_opacity=0.25)
            )  # fmt: skip
    return out


def _words(frame: _Frame, lines: list[dict[str, Any]]) -> list[str]:
    """Each line's words by its time (caller above the lanes, bot below, in two alternating
    rows, each text cut before the next one in its row), keys as key caps on the caller's lane."""
    out = []
    for line in lines:
        if line["who"] == "caller" and _is_key(line["text"]):
            key, t = line["text"].strip().lstrip("#") or "?", line["t"]
            cap = _rect(frame.x(t) - 6, CALLER_Y + 3, 12, 14, "#333", rx=2)
            label = _text(key, frame.x(t), CALLER_Y + 14, fill="#fff", text_anchor="middle")
            out.append(_el("g", _title(f"key {key} at {t:.2f} s") + cap + label, class_="key"))
    for who, first_row, lane_edge, row_step in (
        ("caller", CALLER_Y - 6, CALLER_Y, -13),
        ("bot", BOT_Y + LANE_PX + 14, BOT_Y + LANE_PX, 13),
    ):
        said = [line for line in lines if line["who"] == who and not _is_key(line["text"])]
        for n, line in enumerate(said):
            text, t, at = line["text"], line["t"], frame.x(line["t"])
            room = (frame.x(said[n + 2]["t"]) if n + 2 < len(said) else frame.width) - at
            y = first_row + row_step * (n % 2)
            state = f" [{line['state']}]" if line.get("state") else ""
            words = _title(f"{t:.2f} s {who}{state}: {text}") + _vline(at, y, lane_edge, "#999")
            words += _text(_clip(text, max(4, int(room / CHAR_PX))), at + 2, y)
            out.append(_el("g", words, class_=f"words {who}"))
    return out


def _markers(
    frame: _Frame, call: Mapping[str, Any], answers: dict[int, float], turns: list[Turn]
) -> list[str]:
    """Answered turns on the bot's lane, barge-ins across both lanes, webhook calls and the
    AMD verdict on a row of events."""
    out = [
        _el("circle", _title(f"turn {n}: {total:.0f} ms from the caller's last word"),
            class_="turn-mark", cx=frame.x(answers[n]), cy=BOT_Y, r=4, fill="#333")
        for n, _, total in turns if n in answers
    ]  # fmt: skip
    for event in _events(call, "barge_ins")[0]:
        t = float(event["t"])
        out.append(_vline(frame.x(t), CALLER_Y - 4, BOT_Y + LANE_PX + 4, COLOURS["alert"],
                          f"barge-in at {t:.2f} s", class_="barge-in", stroke_width=2))  # fmt: skip
    webhooks = _events(call, "webhooks")[0]
    amd = call.get("amd") if isinstance(call.get("amd"), Mapping) else None
    amd_at = _num(amd.get("at_s")) if amd else None
    if webhooks or amd_at is not None:
        out.append(_text("events", 8, EVENTS_Y + 10))
    for hook in webhooks:
        t = float(hook["t"])
        ms = _num(hook.get("ms")) or 1000 * (_num(hook.get("seconds")) or 0.0)
        failed = hook.get("ok") is False
        name = f" {hook['name']}" if hook.get("name") else ""
        title = f"webhook{name} at {t:.2f} s: "
        title += f"{'failed' if failed else 'answered'} after {ms:.0f} ms"
        fill = COLOURS["alert"] if failed else "#7f7f7f"
        width = max(3.0, ms / 1000 * frame.scale)
        out.append(_rect(frame.x(t), EVENTS_Y, width, 12, fill, title, class_="webhook"))
    if amd is not None and amd_at is not None:
        at, verdict = frame.x(amd_at), str(amd.get("verdict"))
        reasons = "; ".join(str(r) for r in amd.get("reasons") or ())
        mark = _title(f"AMD verdict {verdict} at {amd_at:.2f} s: {reasons}")
        mark += _vline(at, CALLER_Y - 4, EVENTS_Y + 12, COLOURS["amd"], stroke_dasharray="3 2")
        mark += _text(f"AMD: {verdict}", at + 3, EVENTS_Y + 24, fill=COLOURS["amd"])
        out.append(_el("g", mark, class_="amd"))
    return out


def _axis(frame: _Frame) -> str:
    step = next((s for s in TICK_STEPS_S if s * frame.scale >= MIN_TICK_PX), TICK_STEPS_S[-1])
    parts = [_el("line", x1=LEFT, x2=frame.width - RIGHT, y1=AXIS_Y, y2=AXIS_Y, stroke="#333")]
    for k in range(int(frame.duration / step) + 1):
        at = frame.x(k * step)
        parts.append(_vline(at, AXIS_Y, AXIS_Y + 5, "#333"))
        parts.append(_text(f"{k * step:g} s", at, AXIS_Y + 17, text_anchor="middle"))
    return _el("g", "".join(parts), class_="axis")


def _latency(
    frame: _Frame, turns: list[Turn], answers: dict[int, float], y: int
) -> tuple[list[str], int]:
    """A heading, a legend and one stacked bar per turn; and where the picture ends."""
    heading = "Latency per turn: caller's last word → bot's first packet"
    legend = [
        _rect(8 + k * 78, y + 8, 10, 10, colour) + _text(label, 22 + k * 78, y + 17)
        for k, (_, label, colour) in enumerate(STAGES)
    ]
    out = [_text(heading, 8, y, font_weight="bold"), _el("g", "".join(legend), class_="legend")]
    y += 26
    longest = max([max(total, sum(stages.values())) for _, stages, total in turns] + [1.0])
    ms_px = (frame.width - LEFT - 90) / longest
    if not turns:
        out.append(_text("no turn latency recorded", 8, y + 14, class_="no-latency"))
        y += ROW_PX
    for n, stages, total in turns:
        numbers = ", ".join(f"{label} {stages[k]:.0f} ms" for k, label, _ in STAGES if k in stages)
        at = f" at {answers[n]:.2f} s" if n in answers else ""
        parts = [
            _title(f"turn {n}{at}: {total:.0f} ms ({numbers or 'no stages known'})"),
            _text(f"turn {n}", 8, y + 13),
        ]
        bar_x = float(LEFT)
        for key, _, colour in STAGES:
            if key in stages:
                width = stages[key] * ms_px
                parts.append(_rect(bar_x, y + 2, width, ROW_PX - 4, colour, class_=f"stage {key}"))
                bar_x += width
        parts.append(_text(f"{total:.0f} ms", max(bar_x, LEFT + total * ms_px) + 4, y + 13))
        out.append(_el("g", "".join(parts), class_="latency-bar", data_turn=n))
        y += ROW_PX
    return out, y + 10


def timeline_svg(
    call: Mapping[str, Any], caller_voice: Segments = (), bot_voice: Segments = ()
) -> str:
    """The call's timeline as standalone SVG, from its summary or result record: transcript,
    turns and, when present, duration_s, result or outcome, end_reason, amd ({verdict, at_s,
    reasons}), events (call.session.CallStats: barge-ins and webhooks), or barge_ins and
    webhooks (lists of times or of {t, ...}; a bare number is a count); fields missing from
    ``call`` are looked up in ``call["record"]`` when it has one.
    ``caller_voice``/``bot_voice``: (start, end) seconds from the recording."""
    if isinstance(call.get("record"), Mapping):  # a history row: its result record inside
        call = {**call["record"], **call}
    call = {**_by_kind(call.get("events")), **call}
    lines = _lines(call)
    turns = latency_turns(call)
    amd = call.get("amd") if isinstance(call.get("amd"), Mapping) else None
    barge_ins, barge_in_count = _events(call, "barge_ins")
    webhooks, webhook_count = _events(call, "webhooks")
    ends = [
        _num(call.get("duration_s")) or 0.0,
        (_num(amd.get("at_s")) if amd else None) or 0.0,
        *(end for _, end in (*caller_voice, *bot_voice)),
        *(float(e["t"]) for e in barge_ins + webhooks),
        *(line["t"] + len(line["text"]) / CHARS_PER_S * (line["who"] == "bot") for line in lines),
    ]
    duration = min(max(1.0, *ends), MAX_DURATION_S)
    width = round(min(MAX_WIDTH, max(MIN_WIDTH, LEFT + RIGHT + duration * PX_PER_S)))
    frame = _Frame(duration, width)
    header = [f"{duration:.1f} s", f"{len(turns)} turns with latency"]
    for label, key in (("result", "result"), ("outcome", "outcome"), ("end", "end_reason")):
        header += [f"{label}: {call[key]}"] if call.get(key) else []
    header += [f"AMD: {amd.get('verdict')}"] if amd else []
    header += [f"{barge_in_count} barge-ins"] if barge_in_count else []
    header += [f"{webhook_count} webhook calls"] if webhook_count else []
    answers = {
        int(n): line["t"]
        for line in lines
        if isinstance(line.get("latency_ms"), Mapping)
        and (n := _num(line["latency_ms"].get("turn"))) is not None
    }
    voice = {"caller": list(caller_voice), "bot": list(bot_voice)}
    body = [
        _text(" · ".join(header), 8, 16, class_="header", font_weight="bold"),
        *_lanes(frame, lines, voice),
        *_words(frame, lines),
        *_markers(frame, call, answers, turns),
        _axis(frame),
    ]
    bars, height = _latency(frame, turns, answers, AXIS_Y + 44)
    content = _title("Call timeline") + _rect(0, 0, width, height, "#fff")
    svg_attrs: dict[str, object] = {
        "xmlns": "http://www.w3.org/2000/svg",
        "class": "call-timeline",
        "width": width,
        "height": height,
        "viewBox": f"0 0 {width} {height}",
        "style": "max-width:100%;height:auto",
        "font-family": "sans-serif",
        "font-size": 11,
    }
    return _el("svg", content + "".join(body + bars), **svg_attrs)
