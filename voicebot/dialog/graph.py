"""The state graph of a script being parsed: every goto names a state, every state can be
reached from ``start``, and no chain of gotos loops without waiting for the caller."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from .model import State
from .yamlpos import KeyPath

Problem = tuple[KeyPath, str]


@dataclass(frozen=True)
class Edge:
    source: str | None  # None: from defaults, i.e. from every state that takes input
    target: str
    path: KeyPath
    on_input: bool  # a retry reaction: only an edge of states that take input


def graph_problems(
    start: str,
    names: list[str],
    states: Mapping[str, State],
    edges: Sequence[Edge],
    roots: Mapping[str, str] | None = None,
) -> Iterator[Problem]:
    """What is wrong with the gotos of a parsed script (``edges``: its gotos, in file order).
    ``roots``: other top-level keys naming a state a call may begin in (``on_machine``)."""
    known = set(names)
    roots = roots or {}
    if start and start not in known:
        yield ("start",), f"unknown state '{start}'"
    for key, root in roots.items():
        if root not in known:
            yield (key,), f"unknown state '{root}'"
    for edge in edges:
        if edge.target not in known:
            yield edge.path, f"unknown state '{edge.target}'"
    if start not in known:
        return
    input_states = {n for n, s in states.items() if s.takes_input}
    successors: dict[str, set[str]] = {n: set() for n in names}
    for edge in edges:
        if edge.target not in known:
            continue
        sources = {edge.source} if edge.source is not None else input_states
        for source in sources:
            if edge.on_input and source not in input_states:
                continue
            successors[source].add(edge.target)
    seen: set[str] = set()
    todo = [start, *(root for root in roots.values() if root in known)]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(successors[current])
    for name in names:
        if name not in seen:
            yield ("states", name), f"state '{name}' is unreachable from '{start}'"
    yield from goto_loop_problems(names, states)


def goto_loop_problems(names: list[str], states: Mapping[str, State]) -> Iterator[Problem]:
    """Each chain of plain gotos that comes back to itself, once."""
    reported: set[str] = set()
    for name in names:
        chain = [name]
        current = states.get(name)
        while current is not None and current.goto and current.goto in states:
            if current.goto in chain:
                loop = chain[chain.index(current.goto) :]
                if not reported.intersection(loop):
                    reported.update(loop)
                    yield (
                        ("states", loop[0], "goto"),
                        f"goto loop {' → '.join([*loop, loop[0]])} never waits for the caller",
                    )
                break
            chain.append(current.goto)
            current = states[current.goto]
