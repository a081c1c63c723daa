"""sipp's SIP message trace (``-trace_msg``): when the call was answered, who hung up, and
one line per message for failure reports."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

_TRACE_HEADER = re.compile(
    r"^-+ (\d{4}-\d{2}-\d{2})\s+(\d{2}:\d{2}:\d{2})(?:[.:](\d+))?", re.MULTILINE
)


@dataclass
class SipTrace:
    answered: float | None = None
    hangup_time: float | None = None
    hangup_by: str | None = None
    call_id: str | None = None
    # Final (>= 300) response to our INVITE, e.g. "404 Not Found".
    rejected: str | None = None
    flow: list[str] = field(default_factory=list)


def parse_trace(messages: str) -> SipTrace:
    """Timestamps, who hung up, and the message flow from sipp's -trace_msg file."""
    trace = SipTrace()
    answered = hangup_time = None
    hangup_by = call_id = None
    headers = list(_TRACE_HEADER.finditer(messages))
    for i, match in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(messages)
        lines = [ln.strip() for ln in messages[match.end() : end].splitlines() if ln.strip()]
        if not lines:
            continue
        frac = match.group(3) or "0"
        clock = time.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H:%M:%S")
        stamp = time.mktime(clock) + int(frac) / (10 ** len(frac))
        received = "message received" in lines[0]  # "UDP message received [n] bytes :"
        start_line = lines[1] if len(lines) > 1 else ""
        headers_lower = [ln.lower() for ln in lines]
        if call_id is None:
            for ln, low in zip(lines, headers_lower, strict=True):
                if low.startswith("call-id:"):
                    call_id = ln.split(":", 1)[1].strip()
                    break
        arrow = "<-" if received else "->"
        trace.flow.append(f"{time.strftime('%H:%M:%S', clock)}.{frac[:3]} {arrow} {start_line}")
        cseq_invite = any(re.match(r"cseq:\s*\d+\s+invite", low) for low in headers_lower)
        if received and answered is None and start_line.startswith("SIP/2.0 200") and cseq_invite:
            answered = stamp
        if hangup_by is None and start_line.startswith("BYE "):
            hangup_by = "remote" if received else "caller"
            hangup_time = stamp
        if received and cseq_invite and re.match(r"SIP/2\.0 [3-6]\d\d", start_line):
            trace.rejected = trace.rejected or start_line[8:]
    trace.answered, trace.hangup_time = answered, hangup_time
    trace.hangup_by, trace.call_id = hangup_by, call_id
    return trace
