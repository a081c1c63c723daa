"""The state graph checks: gotos name states, states are reachable, gotos do not loop."""

from __future__ import annotations

from voicebot.dialog.graph import Edge, graph_problems
from voicebot.dialog.model import Intent, State, StateSettings

MENU = State("menu", (), StateSettings(), expect=(Intent("on", ("on",), (), "end"),))
END = State("end", (), StateSettings(), hangup=True)
MENU_TO_END = Edge("menu", "end", ("states", "menu", "expect", "on", "goto"), on_input=False)


def test_a_connected_graph_has_no_problems() -> None:
    states = {"menu": MENU, "end": END}
    assert list(graph_problems("menu", ["menu", "end"], states, [MENU_TO_END])) == []


def test_unknown_targets_are_named_and_an_unknown_start_stops_there() -> None:
    states = {"menu": MENU, "end": END}
    typo = Edge("menu", "ned", ("states", "menu", "goto"), on_input=False)
    assert list(graph_problems("mnu", ["menu", "end"], states, [MENU_TO_END, typo])) == [
        (("start",), "unknown state 'mnu'"),
        (("states", "menu", "goto"), "unknown state 'ned'"),
    ]


def test_a_default_retry_reaction_leaves_only_states_that_take_input() -> None:
    operator = State("operator", (), StateSettings(), hangup=True)
    to_operator = Edge(None, "operator", ("defaults", "on_max_retries", "goto"), on_input=True)
    names = ["menu", "end", "operator"]
    states = {"menu": MENU, "end": END, "operator": operator}
    assert list(graph_problems("menu", names, states, [MENU_TO_END, to_operator])) == []
    start = State("start", (), StateSettings(), goto="end")  # listens to nobody: no retries
    states = {"start": start, "end": END, "operator": operator}
    edges = [Edge("start", "end", ("states", "start", "goto"), False), to_operator]
    assert list(graph_problems("start", ["start", "end", "operator"], states, edges)) == [
        (("states", "operator"), "state 'operator' is unreachable from 'start'")
    ]


def test_a_goto_loop_is_named_once_from_its_first_state() -> None:
    a = State("a", (), StateSettings(), goto="b")
    b = State("b", (), StateSettings(), goto="a")
    edges = [
        Edge("a", "b", ("states", "a", "goto"), False),
        Edge("b", "a", ("states", "b", "goto"), False),
    ]
    assert list(graph_problems("a", ["a", "b"], {"a": a, "b": b}, edges)) == [
        (("states", "a", "goto"), "goto loop a → b → a never waits for the caller")
    ]
