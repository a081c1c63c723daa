"""``voicebot graph``: a picture of a script's flow, drawn by Graphviz.

``script_dot`` turns a parsed script into DOT text (pure: every state, every way out of it,
labelled); ``render_svg`` hands that text to Graphviz's ``dot`` program. The script is the one
``voicebot check`` validates: the graph draws what the parser built, it checks nothing itself.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from ..errors import VoicebotError
from .model import RecordedPrompt, Script, State, Transfer

LABEL_CHARS = 40
RENDER_TIMEOUT_S = 30.0
INSTALL_HINT = "install Graphviz: apt-get install graphviz (or make setup)"

# Node ids of the drawing's own nodes: never a state name, which is an identifier.
ENTRY_NODE = "(entry)"
HANGUP_NODE = "(hang up)"

# step: what the caller chose or the state does next; retry: a retry reaction; error: a failed
# webhook; end: into a hang-up or transfer node.
EdgeKind = Literal["step", "retry", "error", "end"]


class GraphError(VoicebotError):
    """Graphviz failed or took too long."""


class GraphvizMissing(GraphError):
    """Graphviz's ``dot`` program is not installed."""


@dataclass(frozen=True)
class FlowEdge:
    source: str
    target: str
    label: str
    kind: EdgeKind


@dataclass(frozen=True)
class EndNode:
    node_id: str
    label: str
    shape: str


def shorten(text: str, limit: int = LABEL_CHARS) -> str:
    """The first line of ``text``, its spaces collapsed, cut to ``limit`` characters."""
    lines = text.strip().splitlines()
    line = " ".join(lines[0].split()) if lines else ""
    if len(lines) > 1 or len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def dot_string(text: str) -> str:
    """``text`` as a quoted DOT string; a newline becomes a centred line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = re.sub(r"[\r\t\x00-\x09\x0b-\x1f\x7f]", " ", escaped)
    return '"' + escaped.replace("\n", "\\n") + '"'


def transfer_target(transfer: Transfer) -> str:
    """Where a transfer goes, as Asterisk writes it: ``context,extension,priority`` (or the
    priority's label), or ``endpoint TECH/resource``."""
    if transfer.endpoint is not None:
        return f"endpoint {transfer.endpoint}"
    where = transfer.label if transfer.label is not None else transfer.priority
    return ",".join(str(part) for part in (transfer.context, transfer.extension, where) if part)


def transfer_node(transfer: Transfer) -> EndNode:
    lines = ["transfer", transfer_target(transfer)]
    if transfer.variables:
        lines.append("set " + ", ".join(name for name, _ in transfer.variables))
    label = "\n".join(lines)
    # Transfers to the same place with the same variables share one node.
    return EndNode(f"(transfer {' '.join(lines[1:])})", label, "cds")


def state_label(state: State) -> str:
    """The state's name and the start of what it says first."""
    if not state.say:
        return state.name
    first: str | RecordedPrompt = state.say[0]
    said = first.label if isinstance(first, RecordedPrompt) else first
    return f"{state.name}\n{shorten(said)}"


def intent_label(name: str, keys: tuple[str, ...]) -> str:
    return f"{name} / {' '.join(keys)}" if keys else name


HANGUP = EndNode(HANGUP_NODE, "hang up", "octagon")

# An edge out of a state, and the end node it leads to (None: to another state).
Way = tuple[FlowEdge, EndNode | None]


def way(source: str, target: str | None, label: str, kind: EdgeKind) -> Way:
    """An edge from ``source`` to the state ``target``; None: to the hang-up."""
    if target is None:
        return FlowEdge(source, HANGUP_NODE, label, kind), HANGUP
    return FlowEdge(source, target, label, kind), None


def state_edges(state: State) -> Iterator[Way]:
    """Every way out of ``state``."""
    name = state.name
    for intent in state.expect:
        yield way(name, intent.goto, intent_label(intent.name, intent.dtmf), "step")
    if state.collect is not None:
        yield way(name, state.collect.goto, f"slot {state.collect.slot}", "step")
    if state.goto:
        yield way(name, state.goto, "goto", "step")
    for arm in state.branch:
        label = "else" if arm.condition is None else f"if {shorten(arm.condition)}"
        yield way(name, arm.goto, label, "step")
    if state.webhook is not None:
        yield way(name, state.webhook.goto, "webhook ok", "step")
        # A failed webhook without a goto ends the call.
        yield way(name, state.webhook.on_error.goto, "webhook error", "error")
    if state.hangup:
        yield way(name, None, "", "end")
    if state.transfer is not None:
        node = transfer_node(state.transfer)
        yield FlowEdge(name, node.node_id, "", "end"), node
    if state.takes_input:
        yield from retry_edges(state)


def retry_edges(state: State) -> Iterator[Way]:
    """The retry reactions that leave the state (one that only says something and asks again
    stays): to a goto, or to the hang-up. Reactions to the same place share one edge."""
    settings = state.settings
    targets: dict[str | None, list[str]] = {}
    for label, reaction, escalated in (
        ("no input", settings.on_no_input, False),
        ("no match", settings.on_no_match, False),
        ("max retries", settings.on_max_retries, True),
    ):
        # Too many retries always end the state: in its goto, else in a hang-up.
        if reaction.goto or reaction.hangup or escalated:
            targets.setdefault(reaction.goto or None, []).append(label)
    for target, labels in targets.items():
        yield way(state.name, target, ", ".join(labels), "retry")


EDGE_STYLES: dict[EdgeKind, str] = {
    "step": "",
    "retry": 'style=dotted, color="#555555", fontcolor="#555555"',
    "error": "style=dashed, color=red, fontcolor=red",
    "end": "",
}


def script_dot(script: Script, notes: Mapping[str, str] | None = None) -> str:
    """The DOT text of ``script``'s flow: states as boxes (the start one bold, entered from a
    dot), steps as solid edges, retry reactions dotted, webhook errors dashed red, hang-ups and
    transfers as end nodes. ``notes``: a last line for some states' boxes (the console's
    counts from the call history)."""
    notes = notes or {}
    lines = [
        f"digraph {dot_string(script.name or 'script')} {{",
        "  rankdir=TB;",
        '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
        f'  {dot_string(ENTRY_NODE)} [shape=point, width=0.15, label=""];',
    ]
    edges: list[FlowEdge] = []
    end_nodes: dict[str, EndNode] = {}
    for state in script.states.values():
        style = ", penwidth=2.5" if state.name == script.start else ""
        label = state_label(state)
        if state.name in notes:
            label = f"{label}\n{notes[state.name]}"
        lines.append(f"  {dot_string(state.name)} [label={dot_string(label)}{style}];")
        for edge, node in state_edges(state):
            edges.append(edge)
            if node is not None:
                end_nodes.setdefault(node.node_id, node)
    for node in end_nodes.values():
        lines.append(
            f"  {dot_string(node.node_id)} [label={dot_string(node.label)}, shape={node.shape}, "
            'style=filled, fillcolor="#eeeeee", margin="0.25,0.05"];'
        )
    lines.append(f"  {dot_string(ENTRY_NODE)} -> {dot_string(script.start)} [penwidth=2.5];")
    for edge in edges:
        attributes = [f"label={dot_string(edge.label)}"] if edge.label else []
        if EDGE_STYLES[edge.kind]:
            attributes.append(EDGE_STYLES[edge.kind])
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {dot_string(edge.source)} -> {dot_string(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(
    dot_text: str, *, program: str = "dot", timeout_s: float = RENDER_TIMEOUT_S
) -> bytes:
    """The SVG Graphviz draws for ``dot_text``."""
    try:
        done = subprocess.run(
            [program, "-Tsvg"],
            input=dot_text.encode(),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError:
        raise GraphvizMissing(
            f"Graphviz's '{program}' program was not found: {INSTALL_HINT}"
        ) from None
    except subprocess.TimeoutExpired:
        raise GraphError(f"Graphviz's '{program}' took longer than {timeout_s:g} s") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise GraphError(
            f"Graphviz's '{program}' failed (exit {done.returncode})"
            + (f": {reason[0]}" if reason else "")
        )
    return done.stdout
