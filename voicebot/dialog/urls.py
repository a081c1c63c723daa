"""Webhook URL templates: the script fixes a request's shape, variables only fill it in.

A webhook's ``url`` is parsed when the script is loaded into its scheme, host[:port], path
segments and query pairs. A placeholder may stand only inside a path segment or a query
value; the scheme, host, port, query keys and the fragment are the script's own text. When
the url is rendered every value is percent-encoded for the component it fills, so a value (a
caller id from a SIP header, a slot, a webhook answer: anything the caller controls) cannot
add a path segment, climb with ``..``, start a query, add a query key or name another host.

Pure: no I/O. The rendered url is already encoded and must be sent as it is (the HTTP client
must not re-encode or normalise it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NoReturn
from urllib.parse import quote

from .templates import Placeholder, TemplateError, parse_template, render_placeholder

SCHEMES = ("http", "https")
# What RFC 3986 allows as is besides the unreserved characters (which quote() never encodes):
# in a path segment (pchar) and in a query key or value. "&" and "=" are not in the query
# set: in a script's literal text they were split on already, so they never reach it, and a
# literal "=" after a pair's first one is kept by _QUERY_VALUE_SAFE.
_PATH_SAFE = "!$&'()*+,;=:@"
_QUERY_SAFE = "!$'()*+,;:@/?"
_QUERY_VALUE_SAFE = _QUERY_SAFE + "="
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HOST = re.compile(
    r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::(?P<port>.*))?$"
)
_DELIMITERS = re.compile(r"([/?#&=])")
_ONLY = "only path segments and query values may be templated"
_DOT_SEGMENTS = (".", "..")

# A piece of a path segment or query value: literal text (already percent-encoded) or a
# placeholder whose value is encoded when rendered.
Piece = str | Placeholder
Pieces = tuple[Piece, ...]


class UrlTemplateError(TemplateError):
    """A webhook url that a script may not use; ``str()`` is the problem."""


@dataclass(frozen=True)
class QueryPair:
    key: str  # literal, encoded
    value: Pieces | None  # None: a bare key without "=" ("?verbose")


@dataclass(frozen=True)
class UrlTemplate:
    """A parsed webhook url: fixed scheme and authority, templated path segments and values."""

    source: str
    scheme: str
    host: str  # lower case; an IPv6 address without its brackets
    port: int | None  # None: the scheme's default
    path: tuple[Pieces, ...]  # the segments after each "/"; () for no path at all
    query: tuple[QueryPair, ...]

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def render(self, variables: Mapping[str, Any]) -> str:
        """The url with every value encoded for its place; never fails."""
        path = "".join("/" + _render_segment(pieces, variables) for pieces in self.path)
        query = "&".join(_render_pair(pair, variables) for pair in self.query)
        return f"{self.scheme}://{self.authority}{path}" + (f"?{query}" if query else "")


def encode_value(text: str) -> str:
    """``text`` percent-encoded so that it is data in any url component: everything but the
    unreserved characters (letters, digits, ``-._~``) is encoded, UTF-8 for non-ASCII."""
    # errors="replace": a lone surrogate (undecodable caller data) becomes "?", never a crash.
    return quote(text, safe="", errors="replace")


def _render_segment(pieces: Pieces, variables: Mapping[str, Any]) -> str:
    segment = "".join(_render_piece(piece, variables) for piece in pieces)
    # "." and ".." would be removed or climb a level (RFC 3986 dot segments); "%2E" is the
    # same character as data, and an encoded dot is never a dot segment.
    return segment.replace(".", "%2E") if segment in _DOT_SEGMENTS else segment


def _render_pair(pair: QueryPair, variables: Mapping[str, Any]) -> str:
    if pair.value is None:
        return pair.key
    return pair.key + "=" + "".join(_render_piece(piece, variables) for piece in pair.value)


def _render_piece(piece: Piece, variables: Mapping[str, Any]) -> str:
    return piece if isinstance(piece, str) else encode_value(render_placeholder(piece, variables))


def render_url(source: str, variables: Mapping[str, Any]) -> str:
    """Render a webhook url; :class:`UrlTemplateError` only for a url no loaded script has."""
    return parse_url_template(source).render(variables)


# -- parsing --------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def parse_url_template(source: str) -> UrlTemplate:
    """Split a webhook url into its parts; :class:`TemplateError` (a malformed template) or
    :class:`UrlTemplateError` (a url a script may not use) with the problem."""
    parts = parse_template(source).parts
    scheme, authority, rest = _split_head(source, parts)
    host, port = _parse_authority(source, authority)
    tokens = list(_tokens(rest))
    before_fragment, fragment = _cut(tokens, "#")
    _check_fragment(source, fragment)
    path_tokens, query_tokens = _cut(before_fragment, "?")
    return UrlTemplate(
        source=source,
        scheme=scheme,
        host=host,
        port=port,
        path=_parse_path(path_tokens),
        query=_parse_query(source, query_tokens or []),
    )


def _split_head(source: str, parts: Sequence[Piece]) -> tuple[str, str, list[Piece]]:
    """The scheme, the authority text and the parts after it (from the first "/", "?" or "#")."""
    if not parts:
        raise UrlTemplateError(f"bad url '{source}' (expected http:// or https://)")
    if isinstance(parts[0], Placeholder):
        name = parts[0].name
        raise UrlTemplateError(
            f"url '{source}' starts with a placeholder '{{{name}}}': write the scheme and "
            f"host in the script (e.g. https://api.example/{{{name}}}); {_ONLY}"
        )
    head = parts[0]
    match = _SCHEME.match(head)
    if match is None:
        if any(isinstance(part, str) and "://" in part for part in parts[1:]):
            _refuse_placeholder(source, parts, "scheme")
        raise UrlTemplateError(f"bad url '{source}' (expected http:// or https://)")
    if match.group(1) not in SCHEMES:
        raise UrlTemplateError(f"bad url '{source}' (expected http:// or https://)")
    after = head[match.end() :]
    end = next((i for i, char in enumerate(after) if char in "/?#"), None)
    if end is None:
        if len(parts) > 1:  # a placeholder follows before the authority ended
            in_port = ":" in after.rpartition("]")[2]  # "]" ends an IPv6 address
            _refuse_placeholder(source, parts, "port" if in_port else "host")
        return match.group(1), after, []
    return match.group(1), after[:end], [after[end:], *parts[1:]]


def _refuse_placeholder(source: str, parts: Sequence[Piece], component: str) -> NoReturn:
    first = next(part for part in parts if isinstance(part, Placeholder))
    raise UrlTemplateError(
        f"placeholder '{{{first.name}}}' in the {component} of url '{source}' ({_ONLY})"
    )


def _parse_authority(source: str, authority: str) -> tuple[str, int | None]:
    if "@" in authority:
        # Credentials in a url end up in logs and error messages; and "a@b" reads like host a.
        raise UrlTemplateError(
            f"bad url '{source}': a user name or password in the url is not supported"
        )
    match = _HOST.match(authority)
    if match is None:
        raise UrlTemplateError(
            f"bad url '{source}': bad host '{authority}' (letters, digits, '.', '-' or an "
            "[IPv6] address; write an international name in its xn-- form)"
        )
    host = (match.group("ipv6") or match.group("name")).lower()
    port_text = match.group("port")
    if port_text is None:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UrlTemplateError(f"bad url '{source}': bad port '{port_text}'")
    return host, int(port_text)


def _tokens(parts: Sequence[Piece]) -> Iterator[Piece]:
    """Placeholders and literal text, each delimiter ("/", "?", "#", "&", "=") a token of its
    own. A placeholder's name cannot contain one, so the structure is the literal text's."""
    for part in parts:
        if isinstance(part, Placeholder):
            yield part
        else:
            yield from (piece for piece in _DELIMITERS.split(part) if piece)


def _cut(tokens: list[Piece], delimiter: str) -> tuple[list[Piece], list[Piece] | None]:
    """The tokens before the first ``delimiter`` and those after it (None: there is none)."""
    if delimiter not in tokens:
        return tokens, None
    at = tokens.index(delimiter)
    return tokens[:at], tokens[at + 1 :]


def _check_fragment(source: str, fragment: list[Piece] | None) -> None:
    if fragment is None:
        return
    if any(isinstance(token, Placeholder) for token in fragment):
        _refuse_placeholder(source, fragment, "fragment")
    raise UrlTemplateError(
        f"bad url '{source}': a fragment ('#…') is never sent to the web service (remove it)"
    )


def _split(tokens: list[Piece], delimiter: str) -> list[list[Piece]]:
    groups: list[list[Piece]] = [[]]
    for token in tokens:
        if token == delimiter:
            groups.append([])
        else:
            groups[-1].append(token)
    return groups


def _pieces(tokens: list[Piece], safe: str) -> Pieces:
    """Adjacent literal tokens joined and encoded (valid %XX escapes kept as written)."""
    pieces: list[Piece] = []
    for token in tokens:
        if isinstance(token, str) and pieces and isinstance(pieces[-1], str):
            pieces[-1] += token
        else:
            pieces.append(token)
    return tuple(_encode_literal(p, safe) if isinstance(p, str) else p for p in pieces)


def _encode_literal(text: str, safe: str) -> str:
    """The script's own text, encoded where it must be (a space, a brace, non-ASCII, a stray
    "%"); an escape it already wrote (``%20``) stays."""
    out: list[str] = []
    last = 0
    for match in _ESCAPE.finditer(text):
        out += [quote(text[last : match.start()], safe=safe, errors="replace"), match.group()]
        last = match.end()
    out.append(quote(text[last:], safe=safe, errors="replace"))
    return "".join(out)


def _parse_path(tokens: list[Piece]) -> tuple[Pieces, ...]:
    # The path starts with "/" (the authority ended there) or is empty: drop what precedes it.
    segments = _split(tokens, "/")[1:]
    return tuple(_pieces(segment, _PATH_SAFE) for segment in segments)


def _parse_query(source: str, tokens: list[Piece]) -> tuple[QueryPair, ...]:
    pairs: list[QueryPair] = []
    for pair in _split(tokens, "&"):
        if not pair:
            continue  # "a=1&&b=2", a trailing "&" or "?"
        key, value = _cut(pair, "=")
        if any(isinstance(token, Placeholder) for token in key):
            _refuse_placeholder(source, key, "query key")
        literal_key = "".join(token for token in key if isinstance(token, str))
        pairs.append(
            QueryPair(
                key=_encode_literal(literal_key, _QUERY_SAFE),
                value=None if value is None else _pieces(value, _QUERY_VALUE_SAFE),
            )
        )
    return tuple(pairs)
