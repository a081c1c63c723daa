"""The test caller's steps and the sipp scenario built from them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from voicebot.tools.sip.scenario import (
    Dtmf,
    Hangup,
    Pause,
    Play,
    Step,
    WaitForBye,
    complete_steps,
    scenario_xml,
    validate_steps,
)

ONE_SECOND = np.zeros(8000, dtype=np.int16)


def scenario(steps: list[Step], pcaps: dict[int, str]) -> ET.Element:
    return ET.fromstring(scenario_xml(steps, pcaps).encode("iso-8859-1"))


def after_label(root: ET.Element, label: str) -> list[ET.Element]:
    children = list(root)
    start = next(i for i, c in enumerate(children) if c.tag == "label" and c.get("id") == label)
    return children[start + 1 :]


def describe(elements: list[ET.Element]) -> list[tuple[str, ...]]:
    """One tuple per scenario element: what it does, with the attributes that matter."""
    out: list[tuple[str, ...]] = []
    for element in elements:
        played = element.find("action/exec") if element.tag == "nop" else None
        if played is not None:
            out.append(("play", played.get("play_pcap_audio", "")))
        elif element.tag == "pause":
            out.append(("pause", element.get("milliseconds", "")))
        elif element.tag == "send":
            out.append(("send", (element.text or "").split()[0], element.get("next", "")))
        elif element.tag == "recv":
            what = element.get("request") or element.get("response") or ""
            flags = tuple(
                f"{k}={element.get(k)}" for k in ("optional", "timeout", "next") if element.get(k)
            )
            out.append(("recv", what, *flags))
        else:
            out.append((element.tag, element.get("id") or element.get("next") or ""))
    return out


def test_play_pause_dtmf_then_wait_for_bye() -> None:
    steps: list[Step] = [Play(ONE_SECOND), Pause(1.5), Dtmf("12"), WaitForBye(timeout_s=5)]
    root = scenario(steps, {0: "step00-play.pcap", 2: "step02-dtmf.pcap"})
    assert root.tag == "scenario" and root.get("name") == "voicebot test caller"
    assert describe(after_label(root, "steps")) == [
        ("play", "step00-play.pcap"),
        ("pause", "1020"),  # the audio's second plus 20 ms
        ("pause", "1500"),
        ("play", "step02-dtmf.pcap"),
        ("pause", "500"),  # two digits of 120 ms tone + 120 ms gap, plus 20 ms
        ("recv", "BYE", "timeout=5000"),
        ("send", "SIP/2.0", ""),
        ("nop", "done"),
        ("label", "done"),
    ]


def test_hangup_sends_bye_and_accepts_481() -> None:
    root = scenario([Pause(0.25), Hangup()], {})
    assert describe(after_label(root, "steps")) == [
        ("pause", "250"),
        ("send", "BYE", ""),
        ("recv", "481", "optional=true", "next=done"),
        ("recv", "200", "next=done"),
        ("label", "done"),
    ]


def test_call_set_up_and_a_remote_bye_at_any_time() -> None:
    root = scenario([Hangup()], {})
    children = list(root)
    steps_at = next(i for i, c in enumerate(children) if c.get("id") == "steps")
    assert describe(children[:steps_at]) == [
        ("send", "INVITE", ""),
        ("recv", "100", "optional=true"),
        ("recv", "180", "optional=true"),
        ("recv", "183", "optional=true"),
        ("recv", "200"),
        ("send", "ACK", ""),
        ("nop", "steps"),
        ("recv", "BYE", "optional=global", "next=remote_bye"),
        ("recv", "BYE", "next=remote_bye"),
        ("label", "remote_bye"),
        ("send", "SIP/2.0", "done"),
    ]
    invite = children[0].text or ""
    assert "m=audio [media_port] RTP/AVP 0 101" in invite
    assert "a=rtpmap:0 PCMU/8000" in invite and "a=rtpmap:101 telephone-event/8000" in invite
    assert children[4].get("rrs") == "true"  # record the route for the ACK and BYE


def test_pcap_names_are_escaped_for_the_attribute() -> None:
    root = scenario([Play(ONE_SECOND), Hangup()], {0: 'a "b" & <c>.pcap'})
    assert describe(after_label(root, "steps"))[0] == ("play", 'a "b" & <c>.pcap')


def test_durations() -> None:
    assert Play(np.zeros(4000, dtype=np.int16)).duration_s == 0.5
    assert Dtmf("123", tone_ms=100, gap_ms=50).duration_s == pytest.approx(0.45)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Play(np.zeros(10, dtype=np.float32)),
        lambda: Play(np.zeros((10, 2), dtype=np.int16)),
        lambda: Play(np.zeros(0, dtype=np.int16)),
        lambda: Pause(-0.1),
        lambda: Dtmf(""),
        lambda: Dtmf("12x"),
        lambda: Dtmf("1", tone_ms=30),
        lambda: Dtmf("1", gap_ms=10),
    ],
)
def test_bad_steps_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_lowercase_dtmf_letters_are_digits() -> None:
    assert Dtmf("a*#d").digits == "a*#d"


def test_only_the_last_step_may_end_the_call() -> None:
    validate_steps([Pause(1), Hangup()])
    with pytest.raises(ValueError, match="step 0: Hangup must be the last step"):
        validate_steps([Hangup(), Pause(1)])
    with pytest.raises(ValueError, match="step 1: WaitForBye must be the last step"):
        validate_steps([Pause(1), WaitForBye(), Hangup()])
    with pytest.raises(TypeError, match="step 1: unknown step 'hello'"):
        validate_steps([Pause(1), "hello"])  # type: ignore[list-item]


def test_complete_steps_end_the_call() -> None:
    assert complete_steps([]) == [Hangup()]
    assert complete_steps([Pause(1)]) == [Pause(1), Hangup()]
    assert complete_steps([Pause(1), WaitForBye(3)]) == [Pause(1), WaitForBye(3)]
    given: list[Step] = [Pause(1)]
    complete_steps(given)
    assert given == [Pause(1)]  # the caller's list is left alone
    with pytest.raises(ValueError):
        complete_steps([Hangup(), Pause(1)])
