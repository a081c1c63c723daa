"""Running a test call: sipp places it, dumpcap records the caller's media port.

Picks the caller's addresses and free ports, writes the scenario and pcaps into the call's
work directory, runs dumpcap and sipp there (never leaving either behind, even when
cancelled), and reads the result back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from .media import plan_media, write_media
from .result import CallFiles, CallResult, SipCallError, collect_result, read_text, tail
from .scenario import Step, complete_steps, scenario_xml

DEFAULT_SIP_PORT = 5060
# sipp gets this long beyond the call's own timeout before it is killed.
SIPP_GRACE_S = 10
# Lets the last packets in flight reach the capture before it stops.
CAPTURE_SETTLE_S = 0.3
CAPTURE_START_TIMEOUT_S = 15
PROCESS_EXIT_TIMEOUT_S = 5
# Ports handed to callers placed from this process lately: a probed port stays free only until
# sipp binds it, and callers placed together (a load bench: dozens at once) must not pick the
# same one in between.
_RECENTLY_GIVEN: dict[int, float] = {}
_GIVEN_FOR_S = 120.0
_PORT_ATTEMPTS = 400


async def place_call(
    *,
    target: str = "127.0.0.1:5060",
    extension: str = "100",
    steps: Sequence[Step],
    media_ip: str | None = None,
    media_port: int | None = None,
    timeout_s: float = 60.0,
    workdir: Path,
    sipp_binary: str = "sipp",
    dumpcap_binary: str = "dumpcap",
) -> CallResult:
    """Call ``extension`` at ``target`` (host:port, UDP) and run ``steps``.

    ``media_ip`` defaults to the local address that routes to the target (127.0.0.1 for a
    local Asterisk); ``media_port`` defaults to a free even port. ``workdir`` receives the
    scenario, pcaps, capture and sipp logs (kept for post-mortems). A call that does not end
    with Hangup/WaitForBye gets a Hangup appended. Raises ``SipCallError`` when sipp fails
    or the whole call exceeds ``timeout_s``; the error's ``result`` has what was recorded.
    """
    steps = complete_steps(steps)
    for binary in (sipp_binary, dumpcap_binary):
        if shutil.which(binary) is None:
            raise SipCallError(
                f"{binary} not found; run scripts/install-system-deps.sh (sip-tester, tshark)"
            )
    host, port = split_hostport(target)
    remote_ip = socket.gethostbyname(host)
    local_ip = local_ip_for(remote_ip)
    media_ip = media_ip or local_ip
    if media_port is None:
        media_port = free_media_port(media_ip)
    sip_port = free_sip_port(local_ip)

    workdir = Path(workdir)
    workdir = workdir.absolute()  # sipp runs in its own directory
    workdir.mkdir(parents=True, exist_ok=True)
    call_tag = uuid.uuid4().hex[:12]
    call_id = f"voicebot-{call_tag}-1@{local_ip}"

    plan = plan_media(steps, media_ip, media_port, remote_ip)
    write_media(plan, workdir)
    files = CallFiles.in_directory(workdir)
    files.scenario.write_text(scenario_xml(steps, plan.pcaps), encoding="utf-8")
    files.remove_stale()

    sipp_cmd = sipp_command(
        sipp_binary,
        files,
        remote=(remote_ip, port),
        extension=extension,
        local=(local_ip, sip_port),
        media=(media_ip, media_port),
        call_tag=call_tag,
        timeout_s=timeout_s,
    )
    dumpcap_cmd = dumpcap_command(dumpcap_binary, files, media=(media_ip, media_port))
    returncode = await _run(sipp_cmd, dumpcap_cmd, files, workdir, timeout_s)

    result = collect_result(call_id, returncode, plan, media_port, files)
    result.workdir = workdir
    if returncode != 0:
        raise SipCallError(
            failure_message(result, returncode, extension, target, timeout_s), result
        )
    return result


def sipp_command(
    binary: str,
    files: CallFiles,
    *,
    remote: tuple[str, int],
    extension: str,
    local: tuple[str, int],
    media: tuple[str, int],
    call_tag: str,
    timeout_s: float,
) -> list[str]:
    """sipp's command line for one call of the scenario in ``files``, traced into its logs."""
    return [
        binary, f"{remote[0]}:{remote[1]}",
        "-sf", str(files.scenario),
        "-s", extension,
        "-i", local[0], "-p", str(local[1]),
        "-mi", media[0], "-mp", str(media[1]),
        "-m", "1", "-l", "1",
        "-cid_str", f"voicebot-{call_tag}-%u@%s",
        "-timeout", f"{max(1, int(timeout_s))}s", "-timeout_error",
        "-trace_msg", "-message_file", str(files.messages),
        "-trace_err", "-error_file", str(files.errors),
        "-nostdin",
    ]  # fmt: skip


def dumpcap_command(binary: str, files: CallFiles, *, media: tuple[str, int]) -> list[str]:
    """dumpcap's command line capturing the caller's media port, on loopback when it is."""
    media_ip, media_port = media
    interface = "lo" if ipaddress.ip_address(media_ip).is_loopback else "any"
    return [
        binary, "-i", interface, "-f", f"udp port {media_port}",
        "-P", "-q", "-w", str(files.capture),
    ]  # fmt: skip


async def _run(
    sipp_cmd: list[str], dumpcap_cmd: list[str], files: CallFiles, workdir: Path, timeout_s: float
) -> int:
    """Run sipp under a running capture; sipp's exit code, or -1 if it had to be killed."""
    dumpcap: asyncio.subprocess.Process | None = None
    sipp: asyncio.subprocess.Process | None = None
    returncode = -1
    try:
        dumpcap = await _start_capture(dumpcap_cmd)
        with files.stdout.open("wb") as out:
            sipp = await asyncio.create_subprocess_exec(
                *sipp_cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=str(workdir),
                start_new_session=True,
            )
            try:
                returncode = await asyncio.wait_for(sipp.wait(), timeout_s + SIPP_GRACE_S)
            except TimeoutError:
                await _kill(sipp)
                returncode = -1
        await asyncio.sleep(CAPTURE_SETTLE_S)
        await _stop_capture(dumpcap)
    finally:
        # Also runs on cancellation: never leave sipp or dumpcap behind.
        if sipp is not None:
            await _kill(sipp)
        if dumpcap is not None:
            await _kill(dumpcap)
    return returncode


def failure_message(
    result: CallResult, returncode: int, extension: str, target: str, timeout_s: float
) -> str:
    """Why the call failed, its SIP messages and sipp's errors, for the test's report."""
    errors = ""
    if result.workdir is not None:
        errors = tail(read_text(CallFiles.in_directory(result.workdir).errors), 15)
    if result.rejected:
        reason = f"the INVITE was rejected with {result.rejected}"
    elif "receive timeout" in errors:
        reason = "an expected message never came (e.g. no BYE within WaitForBye's timeout)"
    elif returncode == -1:
        reason = f"sipp did not finish within {timeout_s + SIPP_GRACE_S:.0f} s"
    elif not result.sip_flow:
        reason = "sipp did not send anything (see its output below)"
    elif result.answered_time is None:
        reason = "the call was not answered"
    else:
        reason = "the call failed after it was answered (see sipp errors below)"
    if not errors.strip():
        errors = tail(result.sipp_log, 30)
    return (
        f"SIP test call to {extension}@{target} failed: {reason} "
        f"(sipp exit code {returncode}; scenario, pcaps and logs in {result.workdir})\n"
        "SIP messages:\n  " + "\n  ".join(result.sip_flow[-20:] or ["(none)"]) + "\n"
        "sipp errors/output:\n" + errors
    )


# ---- addresses and ports -----------------------------------------------------------------


def split_hostport(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep:
        return target, DEFAULT_SIP_PORT
    return host, int(port)


def local_ip_for(remote_ip: str) -> str:
    """The local address the kernel would send from to reach ``remote_ip``."""
    if ipaddress.ip_address(remote_ip).is_loopback:
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((remote_ip, 9))  # no packet is sent; this only picks the route
        return str(sock.getsockname()[0])


def _claim(ip: str, lowest: int, highest: int, span: int, step: int, what: str) -> int:
    """A port in [lowest, highest) whose ``span`` ports from it bind now and were not given out
    lately. The range stays below Linux's ephemeral ports (32768+): a port free when probed
    could otherwise be handed to some other socket before sipp binds it."""
    now = time.monotonic()
    for port, at in list(_RECENTLY_GIVEN.items()):
        if now - at > _GIVEN_FOR_S:
            del _RECENTLY_GIVEN[port]
    rng = random.Random()
    for _ in range(_PORT_ATTEMPTS):
        port = rng.randrange(lowest, highest, step)
        if any(p in _RECENTLY_GIVEN for p in range(port, port + span)):
            continue
        socks: list[socket.socket] = []
        try:
            for p in range(port, port + span):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((ip, p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        for p in range(port, port + span):
            _RECENTLY_GIVEN[p] = now
        return port
    raise SipCallError(f"no free UDP port for the caller's {what}")


def free_sip_port(ip: str) -> int:
    return _claim(ip, 30000, 32760, 1, 1, "SIP")


def free_media_port(ip: str) -> int:
    # sipp binds the audio port and port+2 (video); RTP ports are even by convention. The
    # range also misses Asterisk's RTP range (10000-10999) and voicebot's own (40000+).
    return _claim(ip, 20000, 29998, 3, 2, "media")


# ---- processes -----------------------------------------------------------------------------


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), PROCESS_EXIT_TIMEOUT_S)


async def _start_capture(cmd: list[str]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(CAPTURE_START_TIMEOUT_S):
            while True:
                line = await proc.stderr.readline()
                if not line:
                    break
                text = line.decode(errors="replace").rstrip()
                seen.append(text)
                if text.startswith("Capturing on"):
                    break
    except TimeoutError:
        pass
    if proc.returncode is not None or not seen or not seen[-1].startswith("Capturing on"):
        await _kill(proc)
        raise SipCallError(
            "packet capture did not start (" + " ".join(cmd) + "): " + " | ".join(seen[-5:])
        )
    # Keep draining stderr so dumpcap never blocks on a full pipe.
    asyncio.get_running_loop().create_task(_drain(proc.stderr))
    return proc


async def _drain(stream: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        while await stream.read(4096):
            pass


async def _stop_capture(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), PROCESS_EXIT_TIMEOUT_S)
    except TimeoutError:
        await _kill(proc)
