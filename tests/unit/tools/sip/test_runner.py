"""Running a test call: addresses, ports, the command lines, failure reports, and the whole
run against stand-ins for sipp and dumpcap (the real ones are exercised by tests/e2e)."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from voicebot.capture.pcap import rtp_stream_from_pcm, write_pcap
from voicebot.media.codecs import ULAW
from voicebot.tools.sip.result import CallFiles, CallResult, SipCallError
from voicebot.tools.sip.runner import (
    dumpcap_command,
    failure_message,
    free_media_port,
    free_sip_port,
    local_ip_for,
    place_call,
    sipp_command,
    split_hostport,
)
from voicebot.tools.sip.scenario import Hangup, Pause, Play, Step

TRACE = (
    "----------------------------------------------- 2024-05-01\t12:00:00.100000\n"
    "UDP message sent (512 bytes):\n\nINVITE sip:100@127.0.0.1:5099 SIP/2.0\n"
    "Call-ID: voicebot-fake-1@127.0.0.1\nCSeq: 1 INVITE\n\n"
    "----------------------------------------------- 2024-05-01\t12:00:00.400000\n"
    "UDP message received [300] bytes :\n\nSIP/2.0 200 OK\nCSeq: 1 INVITE\n\n"
)

# Stand-in for sipp: records how it was run, writes its trace and errors where told, and exits
# with the code in exit-code.txt next to it.
FAKE_SIPP = """
import json, pathlib, sys
here = pathlib.Path(__file__).parent
args = sys.argv[1:]
(here / "sipp-run.json").write_text(json.dumps({"args": args, "cwd": str(pathlib.Path.cwd())}))
pathlib.Path(args[args.index("-message_file") + 1]).write_text((here / "trace.txt").read_text())
pathlib.Path(args[args.index("-error_file") + 1]).write_text((here / "errors.txt").read_text())
print("sipp stand-in ran")
sys.exit(int((here / "exit-code.txt").read_text()))
"""

# Stand-in for dumpcap: announces the capture like dumpcap, and on SIGINT "captures" the
# pcap prepared next to it into the file given with -w.
FAKE_DUMPCAP = """
import pathlib, shutil, signal, sys, time
here = pathlib.Path(__file__).parent
args = sys.argv[1:]
if (here / "capture-fails.txt").exists():
    print("dumpcap: You don't have permission to capture on that device", file=sys.stderr)
    sys.exit(1)
def stop(signum, frame):
    shutil.copy(here / "prepared.pcap", args[args.index("-w") + 1])
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
print("Capturing on 'Loopback: lo'", file=sys.stderr, flush=True)
while True:
    time.sleep(0.05)
"""


def test_split_hostport() -> None:
    assert split_hostport("pbx.example:5070") == ("pbx.example", 5070)
    assert split_hostport("10.0.0.5") == ("10.0.0.5", 5060)


def test_local_ip_for_loopback_is_loopback() -> None:
    assert local_ip_for("127.0.0.1") == "127.0.0.1"
    assert local_ip_for("127.1.2.3") == "127.0.0.1"


def test_media_ports_are_even_free_and_never_given_twice() -> None:
    spans: list[range] = []
    for _ in range(20):
        port = free_media_port("127.0.0.1")
        assert port % 2 == 0 and 20000 <= port < 29998
        spans.append(range(port, port + 3))
        for p in spans[-1]:  # the audio port, its RTCP and sipp's video port bind
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", p))
    given = [p for span in spans for p in span]
    assert len(given) == len(set(given))


def test_sip_ports_stay_below_the_ephemeral_range() -> None:
    ports = {free_sip_port("127.0.0.1") for _ in range(10)}
    assert len(ports) == 10 and all(30000 <= p < 32760 for p in ports)


def test_sipp_command(tmp_path: Path) -> None:
    files = CallFiles.in_directory(tmp_path)
    cmd = sipp_command(
        "/usr/bin/sipp",
        files,
        remote=("10.0.0.5", 5070),
        extension="200",
        local=("10.0.0.9", 30123),
        media=("10.0.0.9", 24000),
        call_tag="abc123",
        timeout_s=42.7,
    )
    assert cmd[:2] == ["/usr/bin/sipp", "10.0.0.5:5070"]
    options = dict(zip(cmd[2::2], cmd[3::2], strict=False))
    assert options["-sf"] == str(files.scenario)
    assert options["-s"] == "200"
    assert (options["-i"], options["-p"]) == ("10.0.0.9", "30123")
    assert (options["-mi"], options["-mp"]) == ("10.0.0.9", "24000")
    assert (options["-m"], options["-l"]) == ("1", "1")
    assert options["-cid_str"] == "voicebot-abc123-%u@%s"
    assert cmd[cmd.index("-timeout") + 1] == "42s"
    assert cmd[cmd.index("-message_file") + 1] == str(files.messages)
    assert cmd[cmd.index("-error_file") + 1] == str(files.errors)
    assert {"-timeout_error", "-trace_msg", "-trace_err", "-nostdin"} <= set(cmd)
    short = sipp_command(
        "sipp",
        files,
        remote=("h", 1),
        extension="1",
        local=("h", 2),
        media=("h", 4),
        call_tag="t",
        timeout_s=0.2,
    )
    assert short[short.index("-timeout") + 1] == "1s"  # sipp needs at least a second


def test_dumpcap_command(tmp_path: Path) -> None:
    files = CallFiles.in_directory(tmp_path)
    local = dumpcap_command("dumpcap", files, media=("127.0.0.1", 24000))
    assert local == [
        "dumpcap", "-i", "lo", "-f", "udp port 24000", "-P", "-q", "-w", str(files.capture),
    ]  # fmt: skip
    remote = dumpcap_command("dumpcap", files, media=("192.0.2.10", 24002))
    assert remote[1:5] == ["-i", "any", "-f", "udp port 24002"]


def result(tmp_path: Path, **changes: object) -> CallResult:
    values: dict[str, object] = {
        "call_id": "id",
        "sipp_returncode": 1,
        "sipp_log": "log line 1\nlog line 2",
        "received_audio": np.zeros(0, dtype=np.int16),
        "received_packets": [],
        "received_start_time": None,
        "sent_start_time": [],
        "dtmf_sent_time": [],
        "answered_time": 5.0,
        "sip_flow": ["12:00:00.100 -> INVITE sip:100@x SIP/2.0", "12:00:00.400 <- SIP/2.0 200 OK"],
        "workdir": tmp_path,
    }
    values.update(changes)
    return CallResult(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "returncode", "errors", "reason"),
    [
        ({"rejected": "404 Not Found"}, 1, "", "the INVITE was rejected with 404 Not Found"),
        ({}, 1, "x\nreceive timeout on BYE\n", "an expected message never came"),
        ({}, -1, "", "sipp did not finish within 40 s"),
        ({"sip_flow": []}, 255, "", "sipp did not send anything"),
        ({"answered_time": None}, 1, "", "the call was not answered"),
        ({}, 1, "", "the call failed after it was answered"),
    ],
)
def test_failure_message_says_why(
    tmp_path: Path, changes: dict[str, object], returncode: int, errors: str, reason: str
) -> None:
    CallFiles.in_directory(tmp_path).errors.write_text(errors)
    message = failure_message(result(tmp_path, **changes), returncode, "100", "pbx:5060", 30)
    assert message.startswith(f"SIP test call to 100@pbx:5060 failed: {reason}")
    assert f"(sipp exit code {returncode}; scenario, pcaps and logs in {tmp_path})" in message
    assert "SIP messages:\n  12:00:00.100 -> INVITE" in message or "(none)" in message
    # sipp's error log when it has one, else the tail of everything sipp said.
    assert message.endswith(errors.rstrip("\n").split("\n")[-1] if errors else "log line 2")


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def stand_ins(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("sipp", FAKE_SIPP), ("dumpcap", FAKE_DUMPCAP)):
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)
    (bin_dir / "trace.txt").write_text(TRACE)
    (bin_dir / "errors.txt").write_text("")
    (bin_dir / "exit-code.txt").write_text("0")
    return bin_dir


def prepare_capture(bin_dir: Path, media_port: int) -> None:
    bot = rtp_stream_from_pcm(
        np.full(480, 3000, dtype=np.int16),
        codec=ULAW,
        src=("127.0.0.1", 10042),
        dst=("127.0.0.1", media_port),
        ssrc=99,
        start_time=50.0,
    )
    write_pcap(bin_dir / "prepared.pcap", bot)


async def test_place_call_runs_sipp_under_a_capture(tmp_path: Path, stand_ins: Path) -> None:
    media_port = free_media_port("127.0.0.1")
    prepare_capture(stand_ins, media_port)
    workdir = tmp_path / "call"
    workdir.mkdir()
    (workdir / "sipp-errors.log").write_text("from an earlier call")
    steps: list[Step] = [Pause(0.5), Play(np.ones(400, dtype=np.int16))]
    call = await place_call(
        target="127.0.0.1:5099",
        extension="321",
        steps=steps,
        media_port=media_port,
        timeout_s=20,
        workdir=workdir,
        sipp_binary=str(stand_ins / "sipp"),
        dumpcap_binary=str(stand_ins / "dumpcap"),
    )
    run = json.loads((stand_ins / "sipp-run.json").read_text())
    assert run["cwd"] == str(workdir)
    args = run["args"]
    assert args[0] == "127.0.0.1:5099"
    assert args[args.index("-s") + 1] == "321"
    assert args[args.index("-mp") + 1] == str(media_port)
    assert args[args.index("-sf") + 1] == str(workdir / "scenario.xml")
    assert names(workdir) == [
        "capture.pcap",
        "scenario.xml",
        "sipp-errors.log",
        "sipp-messages.log",
        "sipp-stdout.log",
        "step01-play.pcap",
    ]
    assert (workdir / "sipp-errors.log").read_text() == ""  # the stale log was replaced
    assert "step01-play.pcap" in (workdir / "scenario.xml").read_text()
    # A Hangup was appended: the scenario ends with BYE.
    assert "BYE [next_url]" in (workdir / "scenario.xml").read_text()

    assert call.workdir == workdir and call.sipp_returncode == 0
    assert call.call_id == "voicebot-fake-1@127.0.0.1"
    assert len(call.received_packets) == 3 and call.received_audio.size == 480
    assert call.sent_start_time == [None]  # the stand-in sends nothing
    assert "sipp stand-in ran" in call.sipp_log


async def test_place_call_failure_carries_the_result(tmp_path: Path, stand_ins: Path) -> None:
    media_port = free_media_port("127.0.0.1")
    prepare_capture(stand_ins, media_port)
    (stand_ins / "exit-code.txt").write_text("1")
    (stand_ins / "errors.txt").write_text("2024-05-01 12:00:30 receive timeout\n")
    with pytest.raises(SipCallError, match="an expected message never came") as error:
        await place_call(
            target="127.0.0.1:5099",
            steps=[Pause(0.1)],
            media_port=media_port,
            workdir=tmp_path / "call",
            sipp_binary=str(stand_ins / "sipp"),
            dumpcap_binary=str(stand_ins / "dumpcap"),
        )
    failed = error.value.result
    assert failed is not None and failed.sipp_returncode == 1
    assert failed.workdir == tmp_path / "call" and len(failed.received_packets) == 3


async def test_capture_that_does_not_start_fails_the_call(tmp_path: Path, stand_ins: Path) -> None:
    (stand_ins / "capture-fails.txt").write_text("")
    with pytest.raises(SipCallError, match=r"packet capture did not start .*permission"):
        await place_call(
            steps=[Hangup()],
            workdir=tmp_path / "call",
            sipp_binary=str(stand_ins / "sipp"),
            dumpcap_binary=str(stand_ins / "dumpcap"),
        )
    assert not (stand_ins / "sipp-run.json").exists()  # sipp never started


async def test_place_call_checks_steps_and_binaries_first(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Hangup must be the last step"):
        await place_call(steps=[Hangup(), Pause(1)], workdir=tmp_path / "a")
    with pytest.raises(SipCallError, match="no-such-sipp-binary not found; run scripts/install"):
        await place_call(
            steps=[Pause(1)], workdir=tmp_path / "b", sipp_binary="no-such-sipp-binary"
        )
    assert names(tmp_path) == []  # nothing was written
