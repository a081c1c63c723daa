"""AriClient against the in-process FakeAri (real HTTP, no mocks)."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from yarl import URL

from tests.support.fakeari import FakeAri
from tests.support.secrets import (
    PASSWORD,
    assert_no_secret,
    exception_texts,
    log_texts,
)
from voicebot.ari.client import AriClient, plaintext_warning, redact
from voicebot.config import AriConfig
from voicebot.errors import AriAuthError, AriConnectionError, AriHttpError, AriNotFoundError


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri(rtp_port=45678) as server:
        yield server


@pytest.fixture
async def ari(fake: FakeAri) -> AsyncIterator[AriClient]:
    async with AriClient(fake.config()) as client:
        yield client


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- requests -----------------------------------------------------------------------------


async def test_asterisk_info(ari: AriClient) -> None:
    info = await ari.asterisk_info()
    assert info["system"]["version"].startswith("22")


async def test_call_setup_sequence(fake: FakeAri, ari: AriClient) -> None:
    caller = await fake.add_caller(args=["demo"], caller_number="555")
    await ari.answer(caller)
    bridge = await ari.create_bridge(name="call-1")
    assert bridge.bridge_type == "mixing"
    media = await ari.external_media("voicebot", "127.0.0.1:40002", "ulaw")
    assert media.name.startswith("UnicastRTP/127.0.0.1:40002-")
    # Like Asterisk, the media channel can join a bridge only once it has entered Stasis.
    with pytest.raises(AriHttpError) as early:
        await ari.add_channel(bridge.id, [caller, media.id])
    assert early.value.status == 422 and "not in Stasis" in early.value.message
    await fake.settle()
    assert media.id in fake.in_stasis
    await ari.add_channel(bridge.id, [caller, media.id])

    assert (await ari.get_channel(caller)).state == "Up"
    assert (await ari.get_channel(caller)).caller_number == "555"
    [listed] = await ari.list_bridges()
    assert listed.channel_ids == (caller, media.id)
    assert {c.id for c in await ari.list_channels()} == {caller, media.id}
    assert fake.paths() == [
        f"/channels/{caller}/answer",
        "/bridges",
        "/channels/externalMedia",
        f"/bridges/{bridge.id}/addChannel",
        f"/bridges/{bridge.id}/addChannel",
        f"/channels/{caller}",
        f"/channels/{caller}",
        "/bridges",
        "/channels",
    ]
    assert fake.requests[4][2] == {"channel": f"{caller},{media.id}"}

    await ari.remove_channel(bridge.id, media.id)
    await ari.hangup(media.id)
    await ari.destroy_bridge(bridge.id)
    assert fake.bridges == {}
    assert media.id not in fake.channels
    assert fake.requests[-2] == ("DELETE", f"/channels/{media.id}", {"reason": "normal"})


async def test_external_media_params_and_rtp_variables(fake: FakeAri, ari: AriClient) -> None:
    media = await ari.external_media(
        "voicebot",
        "10.0.0.5:40010",
        "slin16",
        channel_id="media-1",
        variables={"CALL_ID": "abc"},
    )
    method, path, params = fake.requests[-1]
    assert (method, path) == ("POST", "/channels/externalMedia")
    assert params == {
        "app": "voicebot",
        "external_host": "10.0.0.5:40010",
        "format": "slin16",
        "channelId": "media-1",
        "encapsulation": "rtp",
        "transport": "udp",
        "connection_type": "client",
        "direction": "both",
    }
    assert fake.bodies[-1] == {"variables": {"CALL_ID": "abc"}}
    assert media.id == "media-1"
    assert await ari.get_variable("media-1", "UNICASTRTP_LOCAL_ADDRESS") == "127.0.0.1"
    assert await ari.get_variable("media-1", "UNICASTRTP_LOCAL_PORT") == "45678"
    assert await ari.get_variable("media-1", "CALL_ID") == "abc"


async def test_param_values_are_url_encoded(fake: FakeAri, ari: AriClient) -> None:
    caller = await fake.add_caller()
    await ari.continue_in_dialplan(
        caller, context="from internal&x=1", extension="+49 30", priority=3
    )
    assert fake.requests[-1][2] == {
        "context": "from internal&x=1",
        "extension": "+49 30",
        "priority": "3",
    }
    assert fake.channels[caller]["dialplan"]["exten"] == "+49 30"


async def test_originate_play_and_dtmf(fake: FakeAri, ari: AriClient) -> None:
    channel = await ari.originate("PJSIP/200", app_args=["transfer", "x"], caller_id="Bot <100>")
    assert channel.name.startswith("PJSIP/200-")
    assert fake.requests[-1][2] == {
        "endpoint": "PJSIP/200",
        "app": "voicebot",
        "appArgs": "transfer,x",
        "callerId": "Bot <100>",
    }
    playback = await ari.play(channel.id, "sound:hello-world")
    assert playback["target_uri"] == f"channel:{channel.id}"
    await ari.send_dtmf(channel.id, "12#")
    assert fake.requests[-1] == ("POST", f"/channels/{channel.id}/dtmf", {"dtmf": "12#"})


# --- errors -------------------------------------------------------------------------------


async def test_unknown_channel_is_not_found_with_asterisk_message(ari: AriClient) -> None:
    with pytest.raises(AriNotFoundError) as info:
        await ari.answer("nope")
    assert info.value.status == 404
    assert info.value.message == "Channel not found"
    assert info.value.method == "POST"
    assert info.value.path == "/channels/nope/answer"


async def test_unknown_bridge_is_not_found(ari: AriClient) -> None:
    with pytest.raises(AriNotFoundError, match="Bridge not found"):
        await ari.destroy_bridge("nope")


async def test_other_errors_carry_status_and_message(fake: FakeAri, ari: AriClient) -> None:
    caller = await fake.add_caller()
    bridge = await ari.create_bridge()
    with pytest.raises(AriHttpError) as info:
        await ari.add_channel(bridge.id, "ghost")
    assert type(info.value) is AriHttpError
    assert (info.value.status, info.value.message) == (400, "Channel not found")

    fake.fail_next(409, "Bridge not in Stasis application", path_contains="/addChannel")
    with pytest.raises(AriHttpError) as info:
        await ari.add_channel(bridge.id, caller)
    assert info.value.status == 409
    assert "Bridge not in Stasis application" in str(info.value)
    await ari.add_channel(bridge.id, caller)  # the fault was used up
    assert fake.bridges[bridge.id]["channels"] == [caller]


async def test_fault_injection_status_500(fake: FakeAri, ari: AriClient) -> None:
    fake.fail_next(500, "Allocation failed", times=2)
    for _ in range(2):
        with pytest.raises(AriHttpError, match="HTTP 500: Allocation failed"):
            await ari.create_bridge()
    await ari.create_bridge()


async def test_wrong_password_is_auth_error(fake: FakeAri) -> None:
    async with AriClient(fake.config(password="wrong")) as client:
        with pytest.raises(AriAuthError) as info:
            await client.asterisk_info()
    assert info.value.status == 401
    assert info.value.message == "Authentication required"
    assert str(info.value) == (
        "ARI rejected user 'voicebot': wrong ari.user/ari.password (HTTP 401)"
    )
    assert fake.auth_failures == 1


async def test_connection_refused_is_connection_error() -> None:
    port = closed_port()
    config = AriConfig(url=f"http://127.0.0.1:{port}", request_timeout_s=2.0)
    async with AriClient(config) as client:
        with pytest.raises(AriConnectionError, match=f"127.0.0.1:{port}/ari/asterisk/info"):
            await client.asterisk_info()


async def test_url_with_ari_suffix_and_borrowed_session(fake: FakeAri) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with AriClient(fake.config(url=fake.url + "/ari/"), session) as client:
            await client.asterisk_info()
        assert not session.closed  # borrowed, so left open


# --- the password stays secret ------------------------------------------------------------


# Distinctive, and with characters a URL query encodes, so every form of it can be looked for.
async def test_refused_connection_names_no_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = AriConfig(url=f"http://127.0.0.1:{closed_port()}", password=PASSWORD)
    async with AriClient(config) as client:
        with pytest.raises(AriConnectionError) as info:
            await client.asterisk_info()
    assert "cannot reach Asterisk" in str(info.value)
    assert_no_secret(config, exception_texts(info.value) + log_texts(caplog.records))


async def test_401_names_no_password(fake: FakeAri, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = fake.config(password=PASSWORD)
    async with AriClient(config) as client:
        with pytest.raises(AriAuthError) as info:
            await client.asterisk_info()
    assert fake.auth_failures == 1
    assert_no_secret(config, exception_texts(info.value) + log_texts(caplog.records))


def test_redact_hides_every_form_of_the_password() -> None:
    config = AriConfig(password=PASSWORD)
    url = str(URL("ws://ari:8088/ari/events").with_query(api_key=f"voicebot:{PASSWORD}"))
    texts = [
        redact(f"failed: {url}", config),
        redact(f"plain {PASSWORD} and quoted {quote(PASSWORD, safe='')}", config),
    ]
    assert_no_secret(config, texts)
    assert texts[0].startswith("failed: ws://ari:8088/ari/events?api_key=voicebot:***")
    assert redact("nothing to hide", AriConfig(password="")) == "nothing to hide"


# --- plain http ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8088",
        "http://127.0.0.2:8088/ari",
        "http://localhost:8088",
        "http://[::1]:8088",
        "https://asterisk.example:8089",
        "https://10.0.0.5:8089",
    ],
)
def test_no_warning_for_loopback_or_https(url: str) -> None:
    assert plaintext_warning(AriConfig(url=url)) is None


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://asterisk.example:8088", "asterisk.example"),
        ("http://10.0.0.5:8088/ari", "10.0.0.5"),
        ("http://[2001:db8::5]:8088", "2001:db8::5"),
    ],
)
def test_plain_http_off_this_machine_is_warned_about(url: str, host: str) -> None:
    warning = plaintext_warning(AriConfig(url=url))
    assert warning is not None
    assert f"ARI at {host} is reached over plain http://" in warning
    assert "use https://" in warning
