"""Prompt templating: ``{name}``, ``{name|filter}`` and ``{{``/``}}`` for literal braces.

Names are looked up in the dialog's variables: collected slots, ``caller_id``, ``called``,
``channel.NAME`` and webhook results, whose fields are reached with dots
(``{result.balance}``, ``{result.items.0.name}``). Parsing happens when a script is loaded, so
every template error names its line there; rendering never fails: an undefined name renders as
the empty text, and a lone surrogate in a value (a webhook's JSON may escape one) as U+FFFD.
Filters that speak (``digits``) speak the language they are rendered in: the script's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from .lang import ENGLISH, Language

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*$")


def _digits(value: str, language: Language) -> str:
    return language.speak_digits(value)


def _lower(value: str, language: Language) -> str:
    return value.lower()


def _upper(value: str, language: Language) -> str:
    return value.upper()


# Filter name -> (value, language) -> text.
FILTERS: Mapping[str, Callable[[str, Language], str]] = MappingProxyType(
    {"digits": _digits, "lower": _lower, "upper": _upper}
)


# Half of a UTF-16 surrogate pair on its own. JSON may escape one ("\ud800") and json.loads
# then gives a str that no encoder takes: the synthesizer, a recording, a log stream.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"


def well_formed(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8
    wherever it goes (U+FFFD is silent in speech)."""
    return _LONE_SURROGATE.sub(REPLACEMENT_CHARACTER, text)


class TemplateError(ValueError):
    """A template text is malformed; ``str()`` is the problem, ready for a script error."""


@dataclass(frozen=True)
class Placeholder:
    """One ``{name|filter}`` of a template."""

    name: str
    filter: str | None = None


@dataclass(frozen=True)
class Template:
    """A parsed template: literal texts and placeholders in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The variable names the template uses, in order of appearance."""
        return tuple(p.name for p in self.parts if isinstance(p, Placeholder))

    @property
    def is_constant(self) -> bool:
        return not self.names

    @property
    def head(self) -> str:
        """The words before the first placeholder ("You said" of "You said {code|digits}."),
        or "" when the template starts with one or its head is not whole words."""
        first = self.parts[0] if self.parts else ""
        if not isinstance(first, str) or len(self.parts) < 2 or not first.endswith(" "):
            return ""
        return first.strip()

    def render(self, variables: Mapping[str, Any], language: Language = ENGLISH) -> str:
        return "".join(
            part if isinstance(part, str) else render_placeholder(part, variables, language)
            for part in self.parts
        )


def render_placeholder(
    placeholder: Placeholder, variables: Mapping[str, Any], language: Language = ENGLISH
) -> str:
    """The text one placeholder stands for: its variable's value, through its filter (in
    ``language``), as well-formed text (a webhook's JSON may hold lone surrogates)."""
    value = well_formed(to_text(lookup(variables, placeholder.name)))
    if placeholder.filter is not None and value:
        value = FILTERS[placeholder.filter](value, language)
    return value


def _placeholder(body: str, source: str) -> Placeholder:
    name, bar, filter_name = body.partition("|")
    name = name.strip()
    if not name:
        raise TemplateError(f"empty placeholder '{{{body}}}' in {source!r}")
    if not _NAME.match(name):
        raise TemplateError(f"bad variable name '{name}' in {source!r}")
    if not bar:
        return Placeholder(name)
    filter_name = filter_name.strip()
    if filter_name not in FILTERS:
        raise TemplateError(
            f"unknown template filter '{filter_name}' "
            f"(expected one of {', '.join(sorted(FILTERS))})"
        )
    return Placeholder(name, filter_name)


@lru_cache(maxsize=1024)
def parse_template(text: str) -> Template:
    """Split ``text`` into literals and placeholders; :class:`TemplateError` if malformed."""
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "{}" and text[i + 1 : i + 2] == char:
            literal.append(char)
            i += 2
            continue
        if char == "}":
            raise TemplateError(f"unbalanced braces: '}}' without '{{' in {text!r}")
        if char == "{":
            end = text.find("}", i + 1)
            nested = text.find("{", i + 1)
            if end < 0 or (0 <= nested < end):
                raise TemplateError(
                    f"unbalanced braces: '{{' without '}}' in {text!r} (write {{{{ for a "
                    "literal brace)"
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_placeholder(text[i + 1 : end], text))
            i = end + 1
            continue
        literal.append(char)
        i += 1
    if literal:
        parts.append("".join(literal))
    return Template(source=text, parts=tuple(parts))


def lookup(variables: Mapping[str, Any], name: str) -> Any:
    """The value of a dotted ``name``, or None when any part of it is missing.

    The longest leading part that is a variable wins (``channel.LANG`` is one variable);
    the rest walks into mappings by key and into lists by index.
    """
    pieces = name.split(".")
    for cut in range(len(pieces), 0, -1):
        head = ".".join(pieces[:cut])
        if head in variables:
            value: Any = variables[head]
            for piece in pieces[cut:]:
                value = _child(value, piece)
                if value is None:
                    return None
            return value
    return None


def _child(value: Any, key: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(key)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        try:
            return value[int(key)]
        except (ValueError, IndexError):
            return None
    return None


def to_text(value: Any) -> str:
    """How a variable reads inside a prompt: None is empty, JSON booleans stay lower-case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(thaw(value), ensure_ascii=False)
    return str(value)


def render(text: str, variables: Mapping[str, Any], language: Language = ENGLISH) -> str:
    """Render ``text`` (its filters in ``language``); a malformed template (not possible in a
    loaded script) stays as is."""
    try:
        return parse_template(text).render(variables, language)
    except TemplateError:
        return text


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render every string inside ``value`` (a webhook body: any YAML), keeping its shape."""
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, Mapping):
        return {str(k): render_value(v, variables) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, variables) for v in value]
    return value


def template_strings(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Every string inside ``value`` with its key path (for validating webhook bodies)."""
    if isinstance(value, str):
        return [(path, value)]
    found: list[tuple[tuple[str, ...], str]] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            found += template_strings(v, (*path, str(k)))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found += template_strings(v, (*path, str(i)))
    return found


def freeze(value: Any) -> Any:
    """A read-only deep copy: mappings become ``MappingProxyType``, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain ``dict``/``list`` form of a frozen value (for JSON)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value
