"""Reading sipp's SIP message trace: answer time, who hung up, rejections, the flow."""

from __future__ import annotations

import time

import pytest

from voicebot.tools.sip.trace import parse_trace

CALL_ID = "voicebot-abc-1@127.0.0.1"


def message(stamp: str, received: bool, *lines: str) -> str:
    what = "UDP message received [512] bytes :" if received else "UDP message sent (512 bytes):"
    return (
        f"----------------------------------------------- {stamp}\n{what}\n\n"
        + "\n".join(lines)
        + "\n\n"
    )


def sip(start: str, cseq: str) -> tuple[str, ...]:
    return (start, "Via: SIP/2.0/UDP 127.0.0.1:30001", f"Call-ID: {CALL_ID}", f"CSeq: {cseq}")


def local(stamp: str) -> float:
    day, clock = stamp.split("\t")
    whole, _, fraction = clock.partition(".")
    return time.mktime(time.strptime(f"{day} {whole}", "%Y-%m-%d %H:%M:%S")) + float(
        "0." + (fraction or "0")
    )


ANSWERED_CALL = "".join(
    [
        message("2024-05-01\t12:00:00.100000", False, *sip("INVITE sip:100@x SIP/2.0", "1 INVITE")),
        message("2024-05-01\t12:00:00.150000", True, *sip("SIP/2.0 100 Trying", "1 INVITE")),
        message("2024-05-01\t12:00:00.400000", True, *sip("SIP/2.0 200 OK", "1 INVITE")),
        message("2024-05-01\t12:00:00.410000", False, *sip("ACK sip:100@x SIP/2.0", "1 ACK")),
        message("2024-05-01\t12:00:05.250000", True, *sip("BYE sip:vbt@y SIP/2.0", "3 BYE")),
        message("2024-05-01\t12:00:05.260000", False, *sip("SIP/2.0 200 OK", "3 BYE")),
    ]
)


def test_answered_call_hung_up_by_the_remote() -> None:
    trace = parse_trace(ANSWERED_CALL)
    assert trace.call_id == CALL_ID
    assert trace.answered == pytest.approx(local("2024-05-01\t12:00:00.400000"))
    assert trace.hangup_time == pytest.approx(local("2024-05-01\t12:00:05.250000"))
    assert trace.hangup_by == "remote"
    assert trace.rejected is None
    assert trace.flow == [
        "12:00:00.100 -> INVITE sip:100@x SIP/2.0",
        "12:00:00.150 <- SIP/2.0 100 Trying",
        "12:00:00.400 <- SIP/2.0 200 OK",
        "12:00:00.410 -> ACK sip:100@x SIP/2.0",
        "12:00:05.250 <- BYE sip:vbt@y SIP/2.0",
        "12:00:05.260 -> SIP/2.0 200 OK",
    ]


def test_caller_hangs_up_and_the_bye_ok_is_not_an_answer() -> None:
    trace = parse_trace(
        message("2024-05-01\t12:00:00", False, *sip("INVITE sip:100@x SIP/2.0", "1 INVITE"))
        + message("2024-05-01\t12:00:01:5", False, *sip("BYE sip:100@x SIP/2.0", "2 BYE"))
        + message("2024-05-01\t12:00:02", True, *sip("SIP/2.0 200 OK", "2 BYE"))
    )
    assert trace.hangup_by == "caller"
    assert trace.hangup_time == pytest.approx(local("2024-05-01\t12:00:01.5"))
    assert trace.answered is None
    assert trace.flow[0] == "12:00:00.0 -> INVITE sip:100@x SIP/2.0"


def test_rejected_invite_keeps_the_first_final_response() -> None:
    trace = parse_trace(
        message("2024-05-01\t12:00:00.1", False, *sip("INVITE sip:9@x SIP/2.0", "1 INVITE"))
        + message("2024-05-01\t12:00:00.2", True, *sip("SIP/2.0 404 Not Found", "1 INVITE"))
        + message("2024-05-01\t12:00:00.3", True, *sip("SIP/2.0 500 Oops", "1 INVITE"))
    )
    assert trace.rejected == "404 Not Found"
    assert trace.answered is None and trace.hangup_by is None


def test_error_response_to_a_bye_is_not_a_rejection() -> None:
    trace = parse_trace(
        ANSWERED_CALL + message("2024-05-01\t12:00:06", True, *sip("SIP/2.0 481 Gone", "2 BYE"))
    )
    assert trace.rejected is None


def test_empty_or_headerless_trace() -> None:
    for text in ("", "sipp started\nnothing traced\n"):
        trace = parse_trace(text)
        assert (trace.answered, trace.hangup_by, trace.call_id, trace.flow) == (
            None,
            None,
            None,
            [],
        )
