"""YAML loading that remembers where each value came from, for ``file:line`` error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ScriptError

KeyPath = tuple[str, ...]


class _Loader(yaml.SafeLoader):
    """YAML with only ``true``/``false`` as booleans (as in YAML 1.2).

    In a dialog script ``yes``, ``no``, ``on`` and ``off`` are words callers say and intent
    names (``yes: {phrases: [...]}``), not booleans.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _scalar(node: yaml.Node) -> Any:
    # The node's tag was resolved by _Loader while composing: constructing it keeps that.
    return yaml.constructor.SafeConstructor().construct_document(node)


@dataclass
class LocatedDocument:
    """Plain Python data plus the 1-based line of every key path in it."""

    file: str
    data: Any
    lines: dict[KeyPath, int]

    def line_of(self, path: KeyPath) -> int:
        """Line of ``path``, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def error(self, path: KeyPath, problem: str) -> ScriptError:
        return ScriptError(
            problem, file=self.file, line=self.line_of(path), key_path=".".join(path)
        )


def _to_python(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], doc: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str | int | float | bool):
                raise ScriptError(
                    "mapping keys must be plain scalars",
                    file=doc,
                    line=key_node.start_mark.line + 1,
                    key_path=".".join(path),
                )
            key = str(key)
            child = (*path, key)
            if key in result:
                raise ScriptError(
                    "duplicate key",
                    file=doc,
                    line=key_node.start_mark.line + 1,
                    key_path=".".join(child),
                )
            lines[child] = key_node.start_mark.line + 1
            result[key] = _to_python(value_node, child, lines, doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(item, (*path, str(index)), lines, doc)
            for index, item in enumerate(node.value)
        ]
    return _scalar(node)


def load_located(text: str, file: str) -> LocatedDocument:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise ScriptError(f"invalid YAML: {exc.problem}", file=file, line=line) from None
    if root is None:
        raise ScriptError("the file is empty", file=file, line=1)
    lines: dict[KeyPath, int] = {}
    return LocatedDocument(file=file, data=_to_python(root, (), lines, file), lines=lines)


def load_located_file(path: Path) -> LocatedDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"cannot read script: {exc.strerror}", file=str(path)) from None
    return load_located(text, str(path))
