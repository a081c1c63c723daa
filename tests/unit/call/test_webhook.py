"""Webhook calls against real in-process HTTP(S) servers on 127.0.0.1 (no mocks).

What a script's web service can answer (slowly, in chunks, too much, too deep, redirected,
with an untrusted certificate), and what a hostile caller id or slot can do to the request:
nothing but fill its one path segment or query value.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.support.doubles import ListAsr, ToneTts
from voicebot.call import SpeechServices, webhook
from voicebot.call.webhook import (
    MAX_JSON_DEPTH,
    AllowedHost,
    WebhookPolicy,
    address_refusal,
    call_webhook,
    is_json_type,
    non_public_kind,
    origin,
    parse_allow_hosts,
    parse_json,
    webhook_session,
)
from voicebot.config import Config, WebhookConfig
from voicebot.dialog.engine import CallStarted, CallWebhook, DialogEngine
from voicebot.dialog.parser import parse_script
from voicebot.errors import ConfigError
from voicebot.media.codecs import get_codec
from voicebot.media.endpoint import PortAllocator, RtpEndpoint
from voicebot.runtime import Runtime

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
SECRET = "/customers/SECRET-4217/orders?pin=SECRET-1234"


@asynccontextmanager
async def serve(
    handler: Handler, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[str]:
    """An HTTP(S) server on ``host`` answering every path with ``handler``; yields its
    origin."""
    runner = web.ServerRunner(web.Server(handler), handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=tls)
    await site.start()
    try:
        yield f"{'https' if tls else 'http'}://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


LOOPBACK = "127.0.0.1"  # where serve() listens: reached only when listed in allow_hosts


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # The client `voicebot run` gives every call (with its policy).
    async with webhook_session(policy()) as session:
        yield session


def policy(
    allow_hosts: str = LOOPBACK, max_response_bytes: int = 1_000_000, connect_timeout_s: float = 2.0
) -> WebhookPolicy:
    """The ``[webhooks]`` policy; by default one that lets webhooks reach this module's
    servers, which listen on a loopback address."""
    return WebhookPolicy.from_config(
        WebhookConfig(allow_hosts, connect_timeout_s, max_response_bytes)
    )


def json_answer(data: Any) -> Handler:
    async def answer(_: web.BaseRequest) -> web.StreamResponse:
        return web.json_response(data)

    return answer


def payload_of(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    return json.dumps({"pad": "x" * (size - len('{"pad": ""}'))}).encode()


# -- answers --------------------------------------------------------------------------------


async def test_an_answer_written_in_chunks_arrives_whole(http: aiohttp.ClientSession) -> None:
    data = {"items": [f"item {i:04d} " + "x" * 10 for i in range(90)]}
    body = json.dumps(data).encode()
    assert len(body) > 2000

    async def in_two_chunks(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)  # no Content-Length: chunked transfer encoding
        await response.write(body[:1000])
        await asyncio.sleep(0.05)
        await response.write(body[1000:])
        await response.write_eof()
        return response

    async with serve(in_two_chunks) as url:
        assert await call_webhook(http, "GET", url + "/parcels/1", None, 2.0, policy()) == (
            True,
            data,
        )


async def test_a_slow_answer_fails_with_the_timeout(http: aiohttp.ClientSession) -> None:
    async def slow(_: web.BaseRequest) -> web.StreamResponse:
        await asyncio.sleep(1)
        return web.json_response({})

    async with serve(slow) as url:
        ok, reason = await call_webhook(http, "GET", url + SECRET, None, 0.3, policy())
    assert not ok and reason == f"no answer from {url} within 0.3 s"


async def test_a_body_that_stalls_after_the_headers_fails_with_the_timeout(
    http: aiohttp.ClientSession,
) -> None:
    async def stalls(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"a": ')
        await asyncio.sleep(1)
        await response.write(b"1}")
        return response

    async with serve(stalls) as url:
        ok, reason = await call_webhook(http, "GET", url, None, 0.3, policy())
    assert not ok and reason == f"no answer from {url} within 0.3 s"


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
async def test_an_answer_over_the_limit_is_refused(
    http: aiohttp.ClientSession, announced: bool
) -> None:
    async def big(request: web.BaseRequest) -> web.StreamResponse:
        body = payload_of(int(request.query["size"]))
        if announced:
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for start in range(0, len(body), 300):
            await response.write(body[start : start + 300])
        await response.write_eof()
        return response

    limit = policy(max_response_bytes=1000)
    async with serve(big) as url:
        ok, reason = await call_webhook(http, "GET", url + "/?size=1001", None, 2.0, limit)
        assert not ok and reason == f"answer from {url} is larger than 1000 bytes"
        ok, data = await call_webhook(http, "GET", url + "/?size=1000", None, 2.0, limit)
        assert ok and len(data["pad"]) == 1000 - len('{"pad": ""}')


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("application/problem+json", True),
        ("text/html", False),
        ("text/plain", False),
        ("application/octet-stream", False),
    ],
)
async def test_only_a_json_content_type_is_parsed(
    http: aiohttp.ClientSession, content_type: str, accepted: bool
) -> None:
    async def typed(_: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=b'{"a": 1}', headers={"Content-Type": content_type})

    async with serve(typed) as url:
        ok, result = await call_webhook(http, "GET", url + SECRET, None, 2.0, policy())
    if accepted:
        assert (ok, result) == (True, {"a": 1})
    else:
        media = content_type.split(";")[0]
        assert not ok and result == f"answer from {url} is not JSON (Content-Type {media})"


async def test_an_empty_answer_is_an_empty_object(http: aiohttp.ClientSession) -> None:
    async def empty(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=int(request.query["status"]), content_type="text/plain")

    async with serve(empty) as url:
        assert await call_webhook(http, "POST", url + "/?status=200", {"a": 1}, 2.0, policy()) == (
            True,
            {},
        )
        assert await call_webhook(http, "POST", url + "/?status=204", None, 2.0, policy()) == (
            True,
            {},
        )


DEEP = "is nested deeper than 32 levels"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, None),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), DEEP),
        ('{"a":' * 40 + "1" + "}" * 40, DEEP),
        ("[" * 200_000 + "]" * 200_000, DEEP),  # json itself: RecursionError (and a thread)
        ('{"a": NaN}', "is not JSON"),
        ("{'a': 1}", "is not JSON"),
    ],
    ids=["32-deep", "33-deep", "objects", "200000-deep", "NaN", "quotes"],
)
async def test_deep_or_malformed_json_is_refused(
    http: aiohttp.ClientSession, text: str, problem: str | None
) -> None:
    async def answer(_: web.BaseRequest) -> web.StreamResponse:
        return web.Response(text=text, content_type="application/json")

    async with serve(answer) as url:
        ok, result = await call_webhook(http, "GET", url, None, 5.0, policy())
    if problem is None:
        assert ok
    else:
        assert not ok and result == f"answer from {url} {problem}"


def test_parse_json_alone() -> None:
    assert parse_json(b'{"a": [1, {"b": null}]}') == (True, {"a": [1, {"b": None}]})
    assert parse_json(b"42") == (True, 42)
    assert parse_json(b"\xff\xfe{")[0] is False
    assert parse_json(b"[" * 5000 + b"]" * 5000) == (False, "is nested deeper than 32 levels")


@pytest.mark.parametrize("status", [400, 404, 500, 503, 304])
async def test_an_error_status_fails(http: aiohttp.ClientSession, status: int) -> None:
    async def error(_: web.BaseRequest) -> web.StreamResponse:
        return web.json_response({"error": "boom"}, status=status)

    async with serve(error) as url:
        ok, reason = await call_webhook(http, "GET", url + SECRET, None, 2.0, policy())
    assert not ok and reason == f"HTTP {status} from {url}"


async def test_nothing_listening_fails_naming_the_host(http: aiohttp.ClientSession) -> None:
    async with serve(json_answer({})) as url:
        pass  # closed again: its port is free
    ok, reason = await call_webhook(http, "GET", url + SECRET, None, 2.0, policy())
    assert not ok and reason.startswith(f"cannot connect to {url}: ")


# -- redirects and the allow-list ----------------------------------------------------------


@dataclass
class Hits:
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)  # method, path, body

    def recorder(self, then: Handler) -> Handler:
        async def record(request: web.BaseRequest) -> web.StreamResponse:
            self.seen.append((request.method, request.raw_path, await request.read()))
            return await then(request)

        return record


def redirect_to(location: str, status: int = 302) -> Handler:
    async def redirect(_: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return redirect


async def test_a_redirect_is_not_followed_unless_the_script_says_so(
    http: aiohttp.ClientSession,
) -> None:
    target = Hits()
    async with serve(target.recorder(json_answer({"moved": True}))) as there:
        async with serve(redirect_to(there + "/new")) as here:
            ok, reason = await call_webhook(http, "GET", here + SECRET, None, 2.0, policy())
            assert not ok and reason == (
                f"HTTP 302 redirect from {here} not followed (the webhook's follow_redirects "
                "is off)"
            )
            assert target.seen == []
            followed = await call_webhook(
                http, "GET", here + SECRET, None, 2.0, policy(), follow_redirects=True
            )
    assert followed == (True, {"moved": True})
    assert [path for _, path, _ in target.seen] == ["/new"]


async def test_a_redirect_to_a_host_not_allowed_is_refused(http: aiohttp.ClientSession) -> None:
    target = Hits()
    async with serve(target.recorder(json_answer({}))) as there:
        async with serve(redirect_to(there + "/new", 307)) as here:
            allowed = policy(allow_hosts=here.removeprefix("http://"))
            ok, reason = await call_webhook(
                http, "GET", here + SECRET, None, 2.0, allowed, follow_redirects=True
            )
    assert not ok
    there_host = there.removeprefix("http://")
    assert reason == f"redirect from {here}: host {there_host} is not in webhooks.allow_hosts"
    assert target.seen == []  # refused before any request to it


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [(307, "POST", b'{"a": 1}'), (308, "PUT", b'{"a": 1}'), (303, "GET", b""), (302, "GET", b"")],
)
async def test_how_a_followed_redirect_is_requested(
    http: aiohttp.ClientSession, status: int, method: str, body: bytes
) -> None:
    target = Hits()
    async with serve(target.recorder(json_answer({"ok": 1}))) as there:
        async with serve(redirect_to(there + "/new?x=1", status)) as here:
            sent = "PUT" if method == "PUT" else "POST"
            result = await call_webhook(
                http, sent, here + "/old", {"a": 1}, 2.0, policy(), follow_redirects=True
            )
    assert result == (True, {"ok": 1})
    assert target.seen == [(method, "/new?x=1", body)]


async def test_a_relative_redirect_and_too_many_redirects(http: aiohttp.ClientSession) -> None:
    async def hops(request: web.BaseRequest) -> web.StreamResponse:
        hop = int(request.path.strip("/"))
        if hop == 3:
            return web.json_response({"hop": hop})
        return web.Response(status=301, headers={"Location": f"/{hop + 1}"})

    async with serve(hops) as url:
        followed = await call_webhook(
            http, "GET", url + "/0", None, 2.0, policy(), follow_redirects=True
        )
        assert followed == (True, {"hop": 3})
        endless = redirect_to("/again")
    async with serve(endless) as url:
        ok, reason = await call_webhook(
            http, "GET", url + "/", None, 2.0, policy(), follow_redirects=True
        )
    assert not ok and reason == f"more than 5 redirects (the last from {url})"


async def test_only_allowed_hosts_are_called(http: aiohttp.ClientSession) -> None:
    hits = Hits()
    async with serve(hits.recorder(json_answer({"a": 1}))) as url:
        host_port = url.removeprefix("http://")
        port = int(host_port.rpartition(":")[2])
        for allow in ("127.0.0.1", host_port, f"api.example, {host_port}", f" 127.0.0.1:{port} "):
            assert await call_webhook(http, "GET", url, None, 2.0, policy(allow)) == (
                True,
                {"a": 1},
            )
        for allow in ("api.example", f"127.0.0.1:{port + 1}", "127.0.0.2"):
            ok, reason = await call_webhook(http, "GET", url + SECRET, None, 2.0, policy(allow))
            assert not ok and reason == f"host {host_port} is not in webhooks.allow_hosts"
    assert len(hits.seen) == 4


def test_the_allow_list_parses_hosts_and_ports() -> None:
    assert parse_allow_hosts(" API.example, 10.0.0.5:8080,,[::1]:9000 ") == (
        AllowedHost("api.example"),
        AllowedHost("10.0.0.5", 8080),
        AllowedHost("::1", 9000),
    )
    assert parse_allow_hosts("") == ()
    for bad in ("host:port", "a/b", "user@host", ":80", "h?x"):
        with pytest.raises(ConfigError, match=re.escape(f"allow_hosts: bad entry {bad!r}")):
            parse_allow_hosts(bad)


# -- loopback, private and link-local addresses ---------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "RFC 1918"),
        ("172.16.0.1", "RFC 1918"),
        ("172.31.255.255", "RFC 1918"),
        ("192.168.1.10", "RFC 1918"),
        ("100.64.0.1", "shared, RFC 6598"),
        ("100.127.255.255", "shared, RFC 6598"),
        ("169.254.169.254", "link-local"),  # the cloud's metadata service
        ("fe80::1", "link-local"),
        ("fe80::1%2", "link-local"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("fec0::1", "site-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "RFC 1918"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("64:ff9b::a00:1", "RFC 1918"),  # NAT64 of 10.0.0.1
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("11.0.0.1", None),
        ("100.63.255.255", None),
        ("100.128.0.1", None),
        ("172.15.255.255", None),
        ("172.32.0.1", None),
        ("169.255.0.1", None),
        ("192.169.0.1", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8
        ("fbff::1", None),
    ],
)
def test_which_addresses_are_not_public(address: str, kind: str | None) -> None:
    assert non_public_kind(ip_address(address)) == kind


@pytest.mark.parametrize(
    ("address", "host", "port", "allow", "refused"),
    [
        ("127.0.0.1", "127.0.0.1", 8089, "", "loopback"),
        ("127.0.0.1", "127.0.0.1", 8089, "127.0.0.1", None),
        ("127.0.0.1", "127.0.0.1", 8089, "127.0.0.1:8089", None),
        ("127.0.0.1", "127.0.0.1", 8089, "127.0.0.1:8080", "loopback"),
        ("127.0.0.1", "shop.example", 80, "", "loopback"),  # a name resolving to loopback
        ("127.0.0.1", "shop.example", 80, "shop.example", None),  # listed: trusted
        ("127.0.0.1", "shop.example", 80, "127.0.0.1", "loopback"),  # the name is not listed
        ("10.0.0.5", "billing.internal", 8080, "billing.internal:8080", None),
        ("10.0.0.5", "billing.internal", 8080, "billing.internal:9090", "RFC 1918"),
        ("169.254.169.254", "169.254.169.254", 80, "", "link-local"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1", 80, "127.0.0.1", "loopback"),
        ("::1", "::1", 9000, "[::1]:9000", None),
        ("93.184.215.14", "shop.example", 443, "", None),
        ("93.184.215.14", "shop.example", 443, "other.example", None),  # not this check's job
    ],
)
def test_whether_a_host_may_connect_to_an_address(
    address: str, host: str, port: int, allow: str, refused: str | None
) -> None:
    allow_hosts = parse_allow_hosts(allow)
    assert address_refusal(ip_address(address), host, port, allow_hosts) == refused


PRIVATE = "list it in webhooks.allow_hosts"
IS, RESOLVES = "is a private address", "resolves to a private address"


@pytest.mark.parametrize(
    ("url", "where", "why"),
    [
        ("http://127.0.0.1:8089/calls", "http://127.0.0.1:8089", f"{IS} (loopback)"),
        ("http://[::1]/calls", "http://[::1]", f"{IS} (loopback)"),
        ("http://[::ffff:127.0.0.1]:8089/x", "http://[::ffff:127.0.0.1]:8089", f"{IS} (loopback)"),
        ("http://0.0.0.0:8089/calls", "http://0.0.0.0:8089", f"{IS} (unspecified)"),
        ("http://[::]:8089/calls", "http://[::]:8089", f"{IS} (unspecified)"),
        ("http://169.254.169.254/latest/", "http://169.254.169.254", f"{IS} (link-local)"),
        ("http://[fe80::1]/x", "http://[fe80::1]", f"{IS} (link-local)"),
        ("https://10.0.0.5/x?pin=1", "https://10.0.0.5", f"{IS} (RFC 1918)"),
        ("http://100.64.1.1/x", "http://100.64.1.1", f"{IS} (shared, RFC 6598)"),
        ("http://[fd00::5]/x", "http://[fd00::5]", f"{IS} (unique-local)"),
        ("http://0x7f.1:8089/calls", "http://0x7f.1:8089", f"{RESOLVES} (127.0.0.1, loopback)"),
    ],
)  # fmt: skip
async def test_a_webhook_to_a_non_public_address_is_refused_by_default(
    url: str, where: str, why: str
) -> None:
    async with webhook_session() as default:
        assert await call_webhook(default, "GET", url, None, 2.0) == (
            False,
            f"{where} {why}; {PRIVATE}",
        )


async def test_localhost_is_refused_by_default_whatever_it_resolves_to() -> None:
    async with webhook_session() as default:
        ok, reason = await call_webhook(default, "GET", "http://localhost:8089/calls", None, 2.0)
    assert not ok
    assert reason.startswith(f"http://localhost:8089 {RESOLVES} (")  # 127.0.0.1 or ::1
    assert reason.endswith(f", loopback); {PRIVATE}")


@dataclass
class FakeDns(AbstractResolver):
    """Names and the addresses they resolve to, as a DNS server an attacker runs would
    answer (the connection then really goes to that address)."""

    names: Mapping[str, list[str]]
    asked: list[str] = field(default_factory=list)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"{host} is unknown")
        return [
            ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET,
                          proto=0, flags=0)
            for address in self.names[host]
        ]  # fmt: skip

    async def close(self) -> None:
        pass


async def test_the_bots_own_loopback_server_is_reached_only_when_listed() -> None:
    hits = Hits()
    async with serve(hits.recorder(json_answer({"calls": []}))) as url:
        port = int(url.rpartition(":")[2])
        async with webhook_session(policy("")) as default:
            ok, reason = await call_webhook(default, "GET", url + "/calls", None, 2.0, policy(""))
        assert not ok and reason == f"{url} is a private address (loopback); {PRIVATE}"
        assert hits.seen == []  # refused before connecting
        for allow in ("127.0.0.1", f"127.0.0.1:{port}", f"api.example, 127.0.0.1:{port}"):
            async with webhook_session(policy(allow)) as listed:
                answer = await call_webhook(listed, "GET", url + "/calls", None, 2.0, policy(allow))
            assert answer == (True, {"calls": []})
    assert len(hits.seen) == 3


async def test_a_name_that_resolves_to_loopback_is_refused_unless_listed() -> None:
    """DNS rebinding: the url's host looks public; the address connected to is checked."""
    hits = Hits()
    dns = FakeDns({"shop.example": ["127.0.0.1"], "mixed.example": ["203.0.113.7", "127.0.0.1"]})
    async with serve(hits.recorder(json_answer({"calls": []}))) as url:
        port = int(url.rpartition(":")[2])
        async with webhook_session(policy(""), resolver=dns) as session:
            for name in ("shop.example", "mixed.example"):
                ok, reason = await call_webhook(
                    session, "GET", f"http://{name}:{port}/calls?pin=1", None, 2.0, policy("")
                )
                assert not ok and reason == (
                    f"http://{name}:{port} resolves to a private address (127.0.0.1, loopback); "
                    f"{PRIVATE}"
                )
        assert hits.seen == []
        assert dns.asked == ["shop.example", "mixed.example"]
        listed = policy(f"shop.example:{port}")
        async with webhook_session(listed, resolver=dns) as session:
            answer = await call_webhook(
                session, "GET", f"http://shop.example:{port}/calls", None, 2.0, listed
            )
    assert answer == (True, {"calls": []})
    assert [path for _, path, _ in hits.seen] == ["/calls"]


async def test_a_redirect_to_a_non_public_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only 127.0.0.2 counts as loopback here, so the first hop (127.0.0.1) stands for a
    # public web service, reachable with an empty allow-list.
    monkeypatch.setattr(webhook, "_NON_PUBLIC", ((ip_network("127.0.0.2/32"), "loopback"),))
    target = Hits()
    dns = FakeDns({"inside.example": ["127.0.0.2"]})
    async with serve(target.recorder(json_answer({})), host="127.0.0.2") as there:
        port = int(there.rpartition(":")[2])
        for location, reason in [
            (f"{there}/calls", f"{there} is a private address (loopback)"),
            (
                f"http://inside.example:{port}/calls",
                f"http://inside.example:{port} resolves to a private address (127.0.0.2, loopback)",
            ),
        ]:
            async with serve(redirect_to(location, 307)) as here:
                async with webhook_session(policy(""), resolver=dns) as session:
                    ok, why = await call_webhook(
                        session, "GET", here + SECRET, None, 2.0, policy(""),
                        follow_redirects=True,
                    )  # fmt: skip
            assert not ok and why == f"redirect from {here}: {reason}; {PRIVATE}"
    assert target.seen == []


# -- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


async def test_an_untrusted_certificate_fails_and_a_trusted_one_works(
    http: aiohttp.ClientSession, self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    async with serve(json_answer({"secure": True}), tls=tls) as url:
        ok, reason = await call_webhook(http, "GET", url + SECRET, None, 2.0, policy())
        assert not ok
        assert reason.startswith(f"TLS certificate of {url} not accepted: ")
        assert "self-signed certificate" in reason
        # Verification is on, not broken: a client that trusts this certificate gets through.
        trusting = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(cert)))
        async with aiohttp.ClientSession(connector=trusting) as trusted:
            assert await call_webhook(trusted, "GET", url, None, 2.0, policy()) == (
                True,
                {"secure": True},
            )


async def test_a_redirect_from_https_to_http_is_refused(
    self_signed: tuple[Path, Path],
) -> None:
    cert, key = self_signed
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    async with serve(json_answer({})) as plain:
        async with serve(redirect_to(plain + "/x"), tls=tls) as url:
            trusting = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(cert)))
            async with aiohttp.ClientSession(connector=trusting) as trusted:
                ok, reason = await call_webhook(
                    trusted, "GET", url, None, 2.0, policy(), follow_redirects=True
                )
    assert not ok and reason == f"HTTP 302 redirect from {url} to plain http refused"


# -- what callers' values can do to a request ---------------------------------------------------


@dataclass
class Recorded:
    raw_path: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)
    body: Any = None


# value, as a path segment, as a query value (a dot is only special as a whole segment)
HOSTILE = [
    ("1/../../admin?delete=all#", "1%2F..%2F..%2Fadmin%3Fdelete%3Dall%23", None),
    ("..", "%2E%2E", ".."),
    (".", "%2E", "."),
    ("%2e%2e", "%252e%252e", None),
    ("a&b=c", "a%26b%3Dc", None),
    ("Zoë 日本", "Zo%C3%AB%20%E6%97%A5%E6%9C%AC", None),
    ("line\nbreak\r\nHost: evil", "line%0Abreak%0D%0AHost%3A%20evil", None),
    ('", "admin": true, "x": "', "%22%2C%20%22admin%22%3A%20true%2C%20%22x%22%3A%20%22", None),
    ("", "", None),
]


@pytest.mark.parametrize(
    ("value", "in_path", "in_query"), HOSTILE, ids=[repr(v) for v, _, _ in HOSTILE]
)
async def test_a_hostile_value_arrives_as_one_segment_one_query_value_one_string(
    http: aiohttp.ClientSession, value: str, in_path: str, in_query: str | None
) -> None:
    recorded = Recorded()

    async def record(request: web.BaseRequest) -> web.StreamResponse:
        recorded.raw_path = request.raw_path
        recorded.query = {key: request.query.getall(key) for key in request.query}
        recorded.body = await request.json()
        return web.json_response({"ok": True})

    async with serve(record) as url:
        script = parse_script(
            "start: a\nstates:\n  a:\n    webhook:\n"
            f"      url: '{url}/customers/{{caller_id}}/orders?slot={{channel.NOTE}}&fixed=1'\n"
            "      body: {caller: '{caller_id}', nested: ['{channel.NOTE}', 7]}\n"
            "      goto: b\n  b:\n    hangup: true\n",
            "hostile.yaml",
        )
        [request] = DialogEngine(script).handle(
            CallStarted({"caller_id": value, "channel.NOTE": value})
        )
        assert isinstance(request, CallWebhook)
        ok, _ = await call_webhook(http, request.method, request.url, request.body, 2.0, policy())
    assert ok
    in_query = in_path if in_query is None else in_query
    assert recorded.raw_path == f"/customers/{in_path}/orders?slot={in_query}&fixed=1"
    assert recorded.query == {"slot": [value], "fixed": ["1"]}
    assert recorded.body == {"caller": value, "nested": [value, 7]}


# -- the call's log ----------------------------------------------------------------------------


async def test_the_call_logs_only_the_host_at_info(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    script = parse_script("start: a\nstates:\n  a:\n    hangup: true\n", "log.yaml")
    base = random.randint(20000, 59000)
    endpoint = await RtpEndpoint.open(PortAllocator("127.0.0.1", base, base + 50))
    try:
        async with serve(json_answer({})) as url:
            runtime = Runtime(
                Config(webhooks=WebhookConfig(allow_hosts="api.example")),
                SpeechServices(asr=ListAsr([]), tts=ToneTts()),
                http=http,
            )
            session = runtime.new_session(
                call_id="c1", endpoint=endpoint, codec=get_codec("ulaw"), script=script
            )
            with caplog.at_level(logging.DEBUG, logger="voicebot.call.webhook"):
                await session._webhook(CallWebhook(url + SECRET, "GET", None, 2.0))
    finally:
        await endpoint.aclose()
    records = [r for r in caplog.records if r.name == "voicebot.call.webhook"]
    above_debug = [r.getMessage() for r in records if r.levelno > logging.DEBUG]
    assert above_debug == [
        f"call c1: webhook GET {url} failed: host {url.removeprefix('http://')} is not in "
        "webhooks.allow_hosts"
    ]
    debug = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    assert f"call c1: webhook GET {url}{SECRET}" in debug


# -- small pieces ---------------------------------------------------------------------------


def test_origin_names_scheme_host_and_port_only() -> None:
    assert origin("https://api.example:8443/customers/4217?pin=1") == "https://api.example:8443"
    assert origin("https://api.example/x") == "https://api.example"
    assert origin("not a url") == "(an invalid url)"


def test_json_content_types() -> None:
    assert is_json_type("application/json")
    assert is_json_type("application/vnd.api+json")
    assert not is_json_type("text/json-ish")
    assert not is_json_type("application/jsonp")


async def test_an_invalid_url_fails_without_raising(http: aiohttp.ClientSession) -> None:
    assert await call_webhook(http, "GET", "ftp://h/x?pin=1", None, 1.0, policy()) == (
        False,
        "not an http(s) url: ftp://h",
    )
    assert await call_webhook(http, "GET", "/relative", None, 1.0, policy()) == (
        False,
        "not an http(s) url: (an invalid url)",
    )


async def test_no_cookie_passes_from_one_callers_webhook_to_another(
    http: aiohttp.ClientSession,
) -> None:
    cookies: list[str | None] = []

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        cookies.append(request.headers.get("Cookie"))
        response = web.json_response({"ok": True})
        response.set_cookie("session", "caller-one")
        return response

    async with serve(handler) as base:
        for _ in range(2):
            ok, _answer = await call_webhook(http, "GET", f"{base}/lookup", None, 2.0, policy())
            assert ok
    assert cookies == [None, None]
