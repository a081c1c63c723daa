"""YAML loading that remembers where each value came from, for ``file:line`` error messages.

Script files may come from someone else, so loading them is bounded: the file's size, how
deep it nests, and how much its aliases may expand (a few lines of anchors and aliases can
otherwise stand for a billion values: the "billion laughs").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ScriptError

KeyPath = tuple[str, ...]

# Far above any real script (the shipped ones are a few KiB); checked before reading.
MAX_SCRIPT_BYTES = 256 * 1024
# Real scripts nest under ten levels; the bound keeps the recursive composer and converter
# far from Python's recursion limit.
MAX_DEPTH = 100
# Values produced by expanding aliases, all aliases of a document together. Reusing a block
# of phrases in a few states stays far below; aliases of aliases multiplying does not.
MAX_ALIAS_VALUES = 10_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _AliasNode(yaml.Node):
    """A ``*name`` where it was written. The plain composer hands back the anchored node
    itself, which would lose the alias's line and let its expansion go uncounted."""

    id = "alias"

    def __init__(self, name: str, target: yaml.Node, event: yaml.AliasEvent) -> None:
        marks: Any = (event.start_mark, event.end_mark)  # the stubs know two Mark classes
        super().__init__(target.tag, target, *marks)
        self.name = name


class _Loader(yaml.SafeLoader):
    """YAML with only ``true``/``false`` as booleans (as in YAML 1.2), nesting bounded, and
    aliases kept visible as :class:`_AliasNode`.

    In a dialog script ``yes``, ``no``, ``on`` and ``off`` are words callers say and intent
    names (``yes: {phrases: [...]}``), not booleans.
    """

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = super().compose_node(parent, index)  # raises on an undefined alias
            return None if target is None else _AliasNode(event.anchor, target, event)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise ScriptError(
                    f"nested more than {MAX_DEPTH} levels deep", file=self.file, line=line
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


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


@dataclass
class _Converter:
    """Composed nodes → plain data, aliases expanded within :data:`MAX_ALIAS_VALUES`."""

    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)
    alias_values: int = 0
    # Collections being converted (by id), to catch an alias to one of its own ancestors.
    open_nodes: set[int] = field(default_factory=set)

    def fail(self, problem: str, node: yaml.Node, path: KeyPath) -> ScriptError:
        return ScriptError(
            problem, file=self.file, line=node.start_mark.line + 1, key_path=".".join(path)
        )

    def convert(self, node: yaml.Node, path: KeyPath, alias: _AliasNode | None) -> Any:
        """``alias``: the outermost alias being expanded, which any overflow is blamed on."""
        if isinstance(node, _AliasNode):
            return self.expand(node, path, alias)
        if len(path) > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep", alias or node, path)
        if alias is not None:
            self.alias_values += 1
            if self.alias_values > MAX_ALIAS_VALUES:
                raise self.fail(
                    f"alias *{alias.name} makes the document expand past {MAX_ALIAS_VALUES} "
                    "values (aliases of aliases multiply): write the values out instead",
                    alias,
                    path,
                )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.open_nodes.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self.mapping(node, path, alias)
                return [
                    self.convert(item, (*path, str(index)), alias)
                    for index, item in enumerate(node.value)
                ]
            finally:
                self.open_nodes.discard(id(node))
        return self.scalar(node, path)

    def expand(self, node: _AliasNode, path: KeyPath, alias: _AliasNode | None) -> Any:
        if id(node.value) in self.open_nodes:
            raise self.fail(f"alias *{node.name} refers to a value that contains it", node, path)
        # An error inside the expansion is best shown where the alias was written.
        self.lines.setdefault(path, node.start_mark.line + 1)
        return self.convert(node.value, path, alias or node)

    def mapping(self, node: yaml.MappingNode, path: KeyPath, alias: _AliasNode | None) -> Any:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            child = (*path, key)
            if key in result:
                raise self.fail("duplicate key", key_node, child)
            self.lines[child] = key_node.start_mark.line + 1
            result[key] = self.convert(value_node, child, alias)
        return result

    def key(self, node: yaml.Node, path: KeyPath) -> str:
        target = node.value if isinstance(node, _AliasNode) else node
        if target.tag == _MERGE_TAG:
            raise self.fail("merge keys ('<<') are not supported: write the keys out", node, path)
        if not isinstance(target, yaml.ScalarNode):
            raise self.fail("mapping keys must be plain scalars", node, path)
        key = self.scalar(target, path)
        if not isinstance(key, str | int | float | bool):
            raise self.fail("mapping keys must be plain scalars", node, path)
        return str(key)

    def scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        try:
            return _scalar(node)
        except yaml.MarkedYAMLError as exc:  # an unknown !tag, a malformed !!timestamp…
            raise self.fail(f"invalid YAML: {exc.problem}", node, path) from None
        except (ValueError, OverflowError) as exc:
            # A value YAML resolves to a type Python cannot build: a date like 2024-13-45,
            # "0x_", an integer of thousands of digits. Quote it to mean the text.
            value = str(node.value)
            shown = value if len(value) <= 40 else f"{value[:20]}… ({len(value)} characters)"
            why = str(exc).split(";")[0]  # not Python's advice on its own limits
            raise self.fail(
                f"invalid value {shown!r}: {why} (quote it for text)", node, path
            ) from None


def _compose(text: str, file: str) -> yaml.Node | None:
    try:
        loader = _Loader(text, file)  # already checks every character
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise ScriptError(f"invalid YAML: {exc.problem}", file=file, line=line) from None
    except yaml.reader.ReaderError as exc:  # a control character: no mark, only a position
        line = text.count("\n", 0, exc.position) + 1
        problem = f"invalid YAML: character #x{exc.character:04x}: {exc.reason}"
        raise ScriptError(problem, file=file, line=line) from None


def load_located(text: str, file: str) -> LocatedDocument:
    root = _compose(text, file)
    if root is None:
        raise ScriptError("the file is empty", file=file, line=1)
    converter = _Converter(file)
    data = converter.convert(root, (), None)
    return LocatedDocument(file=file, data=data, lines=converter.lines)


def read_script_text(path: Path) -> str:
    """The file's text, refused unread when larger than :data:`MAX_SCRIPT_BYTES`."""
    try:
        size = path.stat().st_size
        if size > MAX_SCRIPT_BYTES:
            raise _too_large(path, f"{size} bytes")
        with path.open("rb") as stream:
            # st_size can lie (a FIFO, /proc, a file still growing): read one byte past it.
            data = stream.read(MAX_SCRIPT_BYTES + 1)
    except OSError as exc:
        raise ScriptError(f"cannot read script: {exc.strerror}", file=str(path)) from None
    if len(data) > MAX_SCRIPT_BYTES:
        raise _too_large(path, f"more than {MAX_SCRIPT_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ScriptError("cannot read script: not UTF-8 text", file=str(path), line=line) from None


def _too_large(path: Path, size: str) -> ScriptError:
    return ScriptError(
        f"script is {size}, larger than the {MAX_SCRIPT_BYTES}-byte limit", file=str(path)
    )


def load_located_file(path: Path) -> LocatedDocument:
    return load_located(read_script_text(path), str(path))
