"""Webhook calls made on behalf of a dialog script (the engine only asks for them).

The url was rendered by ``voicebot.dialog.urls`` (every value percent-encoded for its place),
so it is sent exactly as it is: yarl must not decode or normalise it again. The path and query
carry callers' data, so failure reasons (and INFO logs) name only ``scheme://host[:port]``.
Redirects are followed only when the script asks, one hop at a time, each hop's host checked
against ``[webhooks] allow_hosts``. TLS certificates are always verified (aiohttp's default).

A webhook may not reach the bot's own machine (its ``/calls``), the network behind it or the
cloud's metadata service unless its host is listed in ``allow_hosts``: loopback, private,
shared, link-local, unique-local and unspecified addresses are refused. The check is made on
the addresses a connection is actually opened to (the resolver of :func:`webhook_session`, for
names; the url, for literal addresses), so a name that resolves to 127.0.0.1 is refused like
127.0.0.1 itself, whenever it is looked up (DNS rebinding), redirects included. A session made
otherwise checks literal addresses only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from ..config import WebhookConfig
from ..dialog.engine import CallWebhook
from ..errors import ConfigError

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# A dialog variable deeper than this is an attack or a mistake; json itself would recurse
# until RecursionError on very deep input.
MAX_JSON_DEPTH = 32
# Parsing a bigger answer on the event loop would stall every call's audio for milliseconds.
INLINE_PARSE_BYTES = 64 * 1024
_READ_CHUNK_BYTES = 64 * 1024
_ACCEPT_JSON = {"Accept": "application/json"}
_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class AllowedHost:
    """One entry of ``allow_hosts``: a host, on any port (``port`` None) or on one."""

    host: str  # as a url's raw_host: lower case, IDNA-encoded, an IPv6 address compressed
    port: int | None = None

    def admits(self, url: URL) -> bool:
        return self.admits_host(url.raw_host or "", url.port)

    def admits_host(self, host: str, port: int | None) -> bool:
        return host.lower() == self.host and self.port in (None, port)


def parse_allow_hosts(text: str) -> tuple[AllowedHost, ...]:
    """``"api.example, 10.0.0.5:8080, [::1]:9000"`` → its entries; ConfigError names a bad
    one."""
    entries = []
    for item in (piece.strip() for piece in text.split(",")):
        entry = _allowed_host(item) if item else None
        if item and entry is None:
            raise ConfigError(
                f"webhooks.allow_hosts: bad entry {item!r} (expected host or host:port)"
            )
        if entry is not None:
            entries.append(entry)
    return tuple(entries)


def _allowed_host(item: str) -> AllowedHost | None:
    try:
        url = URL(f"http://{item}")
        host, port = url.raw_host, url.explicit_port
    except (ValueError, TypeError):
        return None
    if not host or url.raw_path not in ("", "/") or url.raw_query_string or url.raw_user:
        return None
    return AllowedHost(host.lower(), port)


def is_listed(allow_hosts: Iterable[AllowedHost], host: str, port: int | None) -> bool:
    """Whether an entry of ``allow_hosts`` names ``host`` (on ``port``)."""
    return any(entry.admits_host(host, port) for entry in allow_hosts)


# -- addresses a webhook may not reach unless its host is listed ---------------------------------

IPAddress = IPv4Address | IPv6Address

# The bot's own machine (127.0.0.1:8089/calls), the networks behind it and the cloud's
# metadata service (169.254.169.254): a script's author, or a caller's value in a url, must
# not turn the bot into a way in. A table, not ipaddress.is_private/is_global, whose ranges
# differ between Python releases.
_NON_PUBLIC: tuple[tuple[IPv4Network | IPv6Network, str], ...] = (
    (ip_network("0.0.0.0/8"), "unspecified"),  # 0.0.0.0 reaches this machine
    (ip_network("10.0.0.0/8"), "RFC 1918"),
    (ip_network("100.64.0.0/10"), "shared, RFC 6598"),
    (ip_network("127.0.0.0/8"), "loopback"),
    (ip_network("169.254.0.0/16"), "link-local"),
    (ip_network("172.16.0.0/12"), "RFC 1918"),
    (ip_network("192.168.0.0/16"), "RFC 1918"),
    (ip_network("::/128"), "unspecified"),
    (ip_network("::1/128"), "loopback"),
    (ip_network("fc00::/7"), "unique-local"),
    (ip_network("fe80::/10"), "link-local"),
    (ip_network("fec0::/10"), "site-local"),
)
# IPv6 forms whose last 32 bits are the IPv4 address a connection ends up at: IPv4-mapped,
# NAT64's well-known prefix and the old IPv4-compatible form.
_CARRYING_IPV4 = (ip_network("::ffff:0:0/96"), ip_network("64:ff9b::/96"), ip_network("::/96"))


def non_public_kind(address: IPAddress) -> str | None:
    """Which non-public range ``address`` is in (``"loopback"``, ``"RFC 1918"``…), None for a
    public address."""
    for network, kind in _NON_PUBLIC:
        if address in network:  # never across IPv4 and IPv6
            return kind
    if isinstance(address, IPv6Address):
        for network in _CARRYING_IPV4:
            if address in network:
                return non_public_kind(IPv4Address(int(address) & 0xFFFFFFFF))
    return None


def address_refusal(
    address: IPAddress, host: str, port: int | None, allow_hosts: Iterable[AllowedHost]
) -> str | None:
    """Why a webhook to ``host:port`` may not connect to ``address`` (the kind of non-public
    address it is), or None when it may: a public address, or any address of a listed host.

    Listing a name trusts whatever it resolves to (an internal service behind internal DNS).
    """
    if is_listed(allow_hosts, host, port):
        return None
    return non_public_kind(address)


def literal_address(host: str) -> IPAddress | None:
    """The address a url's raw host spells out, None for a name."""
    try:
        return ip_address(host)
    except ValueError:
        return None


def _non_public_reason(where: str, address: IPAddress, kind: str, *, resolved: bool) -> str:
    if resolved:
        return (
            f"{where} resolves to a private address ({address}, {kind}); "
            "list it in webhooks.allow_hosts"
        )
    return f"{where} is a private address ({kind}); list it in webhooks.allow_hosts"


class _NonPublicAddress(OSError):
    """A name resolved to an address its webhook may not reach (raised by the resolver)."""

    def __init__(self, host: str, address: IPAddress, kind: str) -> None:
        super().__init__(f"{host} resolves to a {kind} address")
        self.address = address
        self.kind = kind


class GuardedResolver(AbstractResolver):
    """Resolves names as ``inner`` does, then refuses them when any address they resolve to
    may not be reached (:func:`address_refusal`). Connections are opened only to the
    addresses a resolver returns, so what is checked is what is connected to, at every
    lookup; aiohttp keeps an answer for a while (its DNS cache), only ever a checked one."""

    def __init__(
        self, allow_hosts: tuple[AllowedHost, ...], inner: AbstractResolver | None = None
    ) -> None:
        self._allow_hosts = allow_hosts
        self._owns_inner = inner is None
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = literal_address(result["host"])
            if address is None:  # not something to connect to: refuse rather than guess
                raise OSError(f"{host} resolved to something that is not an address")
            kind = address_refusal(address, host, port, self._allow_hosts)
            if kind is not None:
                raise _NonPublicAddress(host, address, kind)
        return results

    async def close(self) -> None:
        if self._owns_inner:
            await self._inner.close()


@dataclass(frozen=True)
class WebhookPolicy:
    """What every webhook of this process may do (``[webhooks]`` in voicebot.toml)."""

    allow_hosts: tuple[AllowedHost, ...]  # empty: any host with a public address
    connect_timeout_s: float
    max_response_bytes: int

    @classmethod
    def from_config(cls, config: WebhookConfig) -> WebhookPolicy:
        return cls(
            allow_hosts=parse_allow_hosts(config.allow_hosts),
            connect_timeout_s=config.connect_timeout_s,
            max_response_bytes=config.max_response_bytes,
        )

    def admits(self, url: URL) -> bool:
        return not self.allow_hosts or any(entry.admits(url) for entry in self.allow_hosts)

    def refusal(self, url: URL) -> str | None:
        """Why ``url`` may not be requested, from the url alone (a host not listed, a literal
        non-public address); a name's addresses are checked when it is looked up."""
        if not self.admits(url):
            return f"host {_host_port(url)} is not in webhooks.allow_hosts"
        host = url.raw_host or ""
        address = literal_address(host)
        if address is None:
            return None
        kind = address_refusal(address, host, url.port, self.allow_hosts)
        return (
            None if kind is None else _non_public_reason(origin(url), address, kind, resolved=False)
        )


DEFAULT_POLICY = WebhookPolicy.from_config(WebhookConfig())


def webhook_session(
    policy: WebhookPolicy = DEFAULT_POLICY, *, resolver: AbstractResolver | None = None
) -> aiohttp.ClientSession:
    """The HTTP client every call's webhooks share; give :func:`call_webhook` the same
    ``policy``. Names are looked up by ``resolver`` (aiohttp's default one when None) and
    refused when they resolve to an address ``policy`` does not admit. It keeps no cookies: a
    cookie one caller's webhook answer sets must not ride along on another caller's
    request."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy.allow_hosts, resolver))
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),  # each webhook sets its own
    )


def origin(url: str | URL) -> str:
    """``scheme://host[:port]`` of ``url``: all of it that logs and failure reasons may name."""
    try:
        target = url if isinstance(url, URL) else URL(url, encoded=True)
        return str(target.origin())
    except (ValueError, TypeError):
        return "(an invalid url)"


def _host_port(url: URL) -> str:
    """``host`` or ``host:port`` as the url names it (how allow_hosts entries are written)."""
    host = url.raw_host or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{url.explicit_port}" if url.explicit_port is not None else host


# -- one request, hop by hop ------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    method: str
    url: URL
    body: Any


@dataclass(frozen=True)
class _Redirect:
    status: int
    location: str | None


@dataclass(frozen=True)
class _Answer:
    raw: bytes
    content_type: str


@dataclass(frozen=True)
class _Refused:
    reason: str  # the host may not be reached


async def call_webhook(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any,
    timeout_s: float,
    policy: WebhookPolicy = DEFAULT_POLICY,
    *,
    follow_redirects: bool = False,
) -> tuple[bool, Any]:
    """``(True, parsed JSON)`` on success, ``(False, reason)`` on any failure. Never raises.

    ``url`` is already encoded (``voicebot.dialog.urls``); ``timeout_s`` bounds the whole
    exchange, redirects included, and ``policy.connect_timeout_s`` each connection.
    """
    try:
        target = URL(url, encoded=True)
    except (ValueError, TypeError):
        return False, "the webhook url is not valid"
    if target.scheme not in _SCHEMES or not target.raw_host:
        return False, f"not an http(s) url: {origin(target)}"
    request = _Request(method.upper(), target, body)
    deadline = asyncio.get_running_loop().time() + timeout_s
    came_from: str | None = None  # the origin that redirected here
    for _ in range(MAX_REDIRECTS + 1):
        via = f"redirect from {came_from}: " if came_from else ""
        refusal = policy.refusal(request.url)
        if refusal is not None:
            return False, via + refusal
        outcome = await _exchange(session, request, policy, deadline, timeout_s)
        if isinstance(outcome, _Refused):
            return False, via + outcome.reason
        if isinstance(outcome, str):
            return False, outcome
        if isinstance(outcome, _Answer):
            return await _decode(outcome, origin(request.url))
        if not follow_redirects:
            return False, (
                f"HTTP {outcome.status} redirect from {origin(request.url)} not followed "
                "(the webhook's follow_redirects is off)"
            )
        following = _redirected(request, outcome)
        if isinstance(following, str):
            return False, following
        came_from, request = origin(request.url), following
    return False, f"more than {MAX_REDIRECTS} redirects (the last from {came_from})"


async def _exchange(
    session: aiohttp.ClientSession,
    request: _Request,
    policy: WebhookPolicy,
    deadline: float,
    timeout_s: float,
) -> _Answer | _Redirect | _Refused | str:
    """One HTTP request: its answer, the redirect it answered with, or why it failed."""
    where = origin(request.url)
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        return f"no answer from {where} within {timeout_s:g} s"
    timeout = aiohttp.ClientTimeout(total=remaining, sock_connect=policy.connect_timeout_s)
    try:
        # The deadline covers the body too, whatever aiohttp's timer does with slow reads.
        async with asyncio.timeout_at(deadline):
            async with session.request(
                request.method,
                request.url,
                json=request.body,
                headers=_ACCEPT_JSON,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                return await _receive(response, where, policy.max_response_bytes)
    except aiohttp.ConnectionTimeoutError:
        return f"could not connect to {where} within {policy.connect_timeout_s:g} s"
    except TimeoutError:
        return f"no answer from {where} within {timeout_s:g} s"
    except aiohttp.ClientConnectorCertificateError as exc:
        return f"TLS certificate of {where} not accepted: {_certificate_problem(exc)}"
    except aiohttp.ClientSSLError as exc:
        return f"TLS with {where} failed: {exc.__class__.__name__}"
    except aiohttp.ClientConnectorError as exc:
        refused = exc.os_error
        if isinstance(refused, _NonPublicAddress):
            return _Refused(_non_public_reason(where, refused.address, refused.kind, resolved=True))
        return f"cannot connect to {where}: {exc.strerror or exc.os_error.__class__.__name__}"
    except aiohttp.ClientError as exc:
        # Not str(exc): some aiohttp errors quote the whole url, callers' data included.
        return f"request to {where} failed: {exc.__class__.__name__}"
    except (ValueError, TypeError) as exc:  # e.g. a body json cannot encode (a YAML date)
        return f"request to {where} failed: {exc.__class__.__name__}"


def _certificate_problem(exc: aiohttp.ClientConnectorCertificateError) -> str:
    error = exc.certificate_error
    return str(getattr(error, "verify_message", "") or getattr(error, "reason", "") or error)


async def _receive(
    response: aiohttp.ClientResponse, where: str, max_bytes: int
) -> _Answer | _Redirect | str:
    if response.status in REDIRECT_STATUSES:
        return _Redirect(response.status, response.headers.get("Location"))
    if response.status >= 300:
        return f"HTTP {response.status} from {where}"
    too_big = f"answer from {where} is larger than {max_bytes} bytes"
    if response.content_length is not None and response.content_length > max_bytes:
        return too_big
    raw = await _read_at_most(response.content, max_bytes)
    if raw is None:
        return too_big
    return _Answer(raw, response.content_type)


async def _read_at_most(stream: aiohttp.StreamReader, max_bytes: int) -> bytes | None:
    """The whole body, however many chunks it comes in; None once it passes ``max_bytes``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_chunked(_READ_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            return None  # leaving the response unread closes the connection
        chunks.append(chunk)
    return b"".join(chunks)


def _redirected(request: _Request, redirect: _Redirect) -> _Request | str:
    """The request a redirect asks for (as browsers and aiohttp do it), or why not."""
    where = origin(request.url)
    if not redirect.location:
        return f"HTTP {redirect.status} redirect from {where} without a Location"
    try:
        target = request.url.join(URL(redirect.location))
    except (ValueError, TypeError):
        return f"HTTP {redirect.status} redirect from {where} to an invalid url"
    if target.scheme not in _SCHEMES or not target.raw_host:
        return f"HTTP {redirect.status} redirect from {where} to a non-http(s) url"
    if request.url.scheme == "https" and target.scheme == "http":
        return f"HTTP {redirect.status} redirect from {where} to plain http refused"
    target = target.with_fragment(None)
    if redirect.status == 303 or (redirect.status in (301, 302) and request.method == "POST"):
        return _Request("GET", target, None)
    return _Request(request.method, target, request.body)


# -- the answer -----------------------------------------------------------------------------


def is_json_type(content_type: str) -> bool:
    """``application/json`` or any ``TYPE/SUBTYPE+json`` (``application/problem+json``)."""
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (media.count("/") == 1 and media.endswith("+json"))


async def _decode(answer: _Answer, where: str) -> tuple[bool, Any]:
    if not answer.raw.strip():
        return True, {}  # "200 OK" with nothing to say: the script goes on without data
    if not is_json_type(answer.content_type):
        return False, f"answer from {where} is not JSON (Content-Type {answer.content_type})"
    if len(answer.raw) > INLINE_PARSE_BYTES:
        ok, data = await asyncio.to_thread(parse_json, answer.raw)
    else:
        ok, data = parse_json(answer.raw)
    return (True, data) if ok else (False, f"answer from {where} {data}")


def parse_json(raw: bytes) -> tuple[bool, Any]:
    """``(True, value)``, or ``(False, what is wrong)`` for text that is not strict JSON or is
    nested deeper than :data:`MAX_JSON_DEPTH`."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        return False, f"is nested deeper than {MAX_JSON_DEPTH} levels"
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        return False, "is not JSON"
    if _deeper_than(value, MAX_JSON_DEPTH):
        return False, f"is nested deeper than {MAX_JSON_DEPTH} levels"
    return True, value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` arrays/objects (without recursing)."""
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        todo += [(child, depth + 1) for child in children]
    return False


async def run_webhook(
    http: aiohttp.ClientSession | None,
    action: CallWebhook,
    policy: WebhookPolicy,
    call_id: str,
    timed: Callable[[float], None],
) -> tuple[bool, Any]:
    """A script's webhook for one call, logged: ``call_webhook``'s answer; ``timed`` gets the
    round trip's seconds when a request was made."""
    started = time.monotonic()
    # The url's path and query carry callers' data (their number, slots): INFO and WARNING
    # name only scheme://host:port, the whole url is for DEBUG.
    where = origin(action.url)
    log.debug("call %s: webhook %s %s", call_id, action.method, action.url)
    if http is None:
        ok, result = False, "no HTTP client available for webhooks"
    else:
        ok, result = await call_webhook(http, action.method, action.url, action.body,
                                        action.timeout_s, policy,
                                        follow_redirects=action.follow_redirects)  # fmt: skip
        timed(time.monotonic() - started)
    if ok:
        log.info("call %s: webhook %s %s answered", call_id, action.method, where)
    else:
        log.warning("call %s: webhook %s %s failed: %s", call_id, action.method, where, result)
    return ok, result
