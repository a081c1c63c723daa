"""Command line: argparse → Config → subcommands. Domain code never sees argparse."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import DEFAULT_MODELS_DIR, Config, load_config
from .errors import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_OK,
    AriAuthError,
    ScriptError,
    VoicebotError,
)

log = logging.getLogger("voicebot")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _config(args: argparse.Namespace) -> Config:
    path = args.config
    if path is None and Path("voicebot.toml").is_file():
        path = Path("voicebot.toml")
    return load_config(path)


def cmd_run(args: argparse.Namespace) -> int:
    from .server.app import serve

    config = _config(args)
    _setup_logging(config.log_level)
    try:
        asyncio.run(serve(config, args.scripts))
    except AriAuthError as exc:
        log.error("%s", exc)
        return EXIT_ERROR
    except ScriptError as exc:
        log.error("invalid script: %s", exc)
        return EXIT_INVALID
    except VoicebotError as exc:
        log.error("%s", exc)
        return EXIT_ERROR
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from .dialog.library import script_settings, sound_dirs
    from .dialog.parser import load_script

    dialog = _config(args).dialog
    failed = 0
    for file in args.files:
        try:
            script = load_script(Path(file), script_settings(dialog), sound_dirs(dialog))
        except ScriptError as exc:
            print(exc, file=sys.stderr)
            failed += 1
        else:
            print(f"{file}: ok ({len(script.states)} states, start '{script.start}')")
    return EXIT_INVALID if failed else EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from .dialog.flowchart import GraphvizMissing, render_svg, script_dot
    from .dialog.library import script_file
    from .dialog.parser import load_script

    try:
        path = script_file(args.script, Path(_config(args).dialog.scripts_dir))
        dot_text = script_dot(load_script(path))
    except ScriptError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    try:
        output = dot_text.encode() if args.format == "dot" else render_svg(dot_text)
    except GraphvizMissing as exc:
        print(f"voicebot graph: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.output in (None, "-"):
        sys.stdout.buffer.write(output)
        sys.stdout.buffer.flush()
    else:
        try:
            Path(args.output).write_bytes(output)
        except OSError as exc:
            print(f"voicebot graph: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
            return EXIT_ERROR
    return EXIT_OK


def cmd_call(args: argparse.Namespace) -> int:
    from .tools.callprobe import load_utterances, run_probe_call

    config = _config(args)
    _setup_logging("WARNING")
    try:
        utterances = load_utterances(args.say, args.language)
        args.workdir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(
            run_probe_call(
                config,
                extension=args.extension,
                target=args.target,
                utterances=utterances,
                wait_for_bye=args.say is None,
                workdir=args.workdir,
                language=args.language,
            )
        )
    except VoicebotError as exc:
        print(f"call failed: {exc}", file=sys.stderr)
        return EXIT_ERROR


def cmd_chat(args: argparse.Namespace) -> int:
    from .dialog.parser import load_script
    from .tools.chat import chat_variables, run_chat

    try:
        script = load_script(Path(args.file))
    except ScriptError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    variables = chat_variables(args.caller_id, args.called, args.var)
    if isinstance(variables, str):
        print(f"voicebot chat: {variables}", file=sys.stderr)
        return EXIT_INVALID
    now = None
    if args.now is not None:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            now = None
        if now is None or now.tzinfo is None:
            print(f"voicebot chat: --now {args.now!r}: expected a time with its offset, e.g. "
                  "2026-12-07T10:00+03:00", file=sys.stderr)  # fmt: skip
            return EXIT_INVALID

    def stdin_lines() -> Iterator[str]:
        while line := sys.stdin.readline():
            yield line

    webhooks = _config(args).webhooks  # the same allowed hosts and limits as on calls
    try:
        return asyncio.run(
            run_chat(
                script,
                stdin_lines(),
                sys.stdout,
                variables=variables,
                echo=not sys.stdin.isatty(),
                webhooks=webhooks,
                now=now,
            )
        )
    except KeyboardInterrupt:
        print(file=sys.stdout)
        return EXIT_OK


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _ssrc(text: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a hex SSRC such as 0x1a2b3c4d, got {text!r}"
        ) from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"SSRC {text} is out of 32-bit range")
    return value


def cmd_replay(args: argparse.Namespace) -> int:
    from .capture.impair import Impairments
    from .tools.chat import chat_variables
    from .tools.replay import replay_command

    config = _config(args)
    _setup_logging(args.log_level or "WARNING")
    try:
        impairments = Impairments(
            loss_pct=args.loss,
            jitter_ms=args.jitter,
            reorder_pct=args.reorder,
            duplicate_pct=args.duplicate,
            ssrc_change_at_s=args.ssrc_change_at,
            truncate_pct=args.truncate,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"voicebot replay: {exc}", file=sys.stderr)
        return EXIT_INVALID
    variables = chat_variables(args.caller_id, args.called, args.var)
    if isinstance(variables, str):
        print(f"voicebot replay: {variables}", file=sys.stderr)
        return EXIT_INVALID
    try:
        return asyncio.run(
            replay_command(
                config,
                capture=args.capture,
                script=args.script,
                out=args.out,
                impairments=impairments,
                speed=args.speed,
                ssrc=args.ssrc,
                source=args.source,
                event_payload_type=args.dtmf_pt,
                variables=variables,
                tail_s=args.tail,
            )
        )
    except ScriptError as exc:
        print(f"voicebot replay: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except VoicebotError as exc:
        print(f"voicebot replay: {exc}", file=sys.stderr)
        return EXIT_ERROR


def cmd_models(args: argparse.Namespace) -> int:
    from .models.commands import run_fetch, run_list

    if args.models_command == "fetch":
        return run_fetch(args.name, args.models_dir, force=args.force, mirror=args.mirror)
    return run_list(args.models_dir, args.scripts)


def cmd_campaign(args: argparse.Namespace) -> int:
    from .tools import campaign

    options = {k: v for k, v in vars(args).items() if k not in ("func", "config", "command")}
    return campaign.run(_config(args), args.campaign_command, **options)


def _add_campaign_parser(sub: Any) -> None:
    campaign = sub.add_parser(
        "campaign", help="outbound campaigns: load a contact list, watch, pause, export"
    )
    commands = campaign.add_subparsers(dest="campaign_command", required=True)
    start = commands.add_parser("start", help="load a CSV contact list and start calling")
    start.add_argument("contacts", type=Path, help="CSV with a 'number' column")
    start.add_argument("--script", required=True, help="the dialog script the calls run")
    start.add_argument("--name", default=None, help="the campaign's name (default: file + time)")
    start.add_argument("--window", default=None, help="local hours to call, e.g. 09:00-20:00")
    start.add_argument("--days", default=None, help="days to call, e.g. mon-sat or mon,wed,fri")
    start.add_argument("--timezone", default=None, help="the campaign's zone, e.g. Europe/Moscow")
    start.add_argument("--max-attempts", type=int, default=None, help="calls per contact (3)")
    start.add_argument(
        "--retry", default=None, help="delay per outcome, e.g. busy=10m,no_answer=1h,machine=4h"
    )
    start.add_argument("--per-day", type=int, default=None, help="attempts per number a day (2)")
    start.add_argument("--per-week", type=int, default=None, help="... in 7 days (4)")
    commands.add_parser("list", help="every campaign, one line each")
    for name, text in (("status", "one campaign in detail"), ("pause", "stop placing its calls"),
                       ("resume", "go on calling"),
                       ("cancel", "stop for good: contacts not done are cancelled")):  # fmt: skip
        command = commands.add_parser(name, help=text)
        command.add_argument("campaign", help="its id or name")
    export = commands.add_parser("export", help="one row per contact with its outcome")
    export.add_argument("campaign", help="its id or name")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("-o", "--output", default=None, help="file (default: standard output)")
    campaign.set_defaults(func=cmd_campaign)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebot", description=__doc__)
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config file (default: ./voicebot.toml if present)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="answer calls from Asterisk (ARI)")
    run.add_argument(
        "--scripts",
        type=Path,
        default=None,
        help="directory of dialog scripts (default: dialog.scripts_dir)",
    )
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate dialog scripts")
    check.add_argument("files", nargs="+")
    check.set_defaults(func=cmd_check)

    graph = sub.add_parser("graph", help="draw a dialog script's flow (Graphviz SVG or DOT)")
    graph.add_argument("script", help="script name (in dialog.scripts_dir) or YAML file path")
    graph.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="where to write (default or -: stdout)"
    )
    graph.add_argument(
        "--format",
        choices=("svg", "dot"),
        default="svg",
        help="svg (drawn by Graphviz's dot) or dot (the DOT text, no Graphviz needed)",
    )
    graph.set_defaults(func=cmd_graph)

    chat = sub.add_parser(
        "chat",
        help="talk to a dialog script in the terminal (type what the caller says; "
        "#123 presses keys, an empty line is silence, Ctrl-D ends)",
    )
    chat.add_argument("file", help="dialog script (YAML)")
    chat.add_argument("--caller-id", default="1000", help="the caller's number (caller_id)")
    chat.add_argument("--called", default="100", help="the dialed extension (called)")
    chat.add_argument(
        "--now",
        default=None,
        metavar="TIME",
        help="the time business hours are judged at, e.g. 2026-12-07T10:00+03:00 "
        "(default: the real time)",
    )
    chat.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a channel variable for templates as channel.NAME; repeatable",
    )
    chat.set_defaults(func=cmd_chat)

    call = sub.add_parser("call", help="place a test call with sipp and print the conversation")
    call.add_argument("--extension", default="100")
    call.add_argument("--target", default="127.0.0.1:5060", help="SIP host:port of Asterisk")
    call.add_argument(
        "--say",
        action="append",
        default=None,
        metavar="WAV",
        help="caller utterance (8 kHz mono WAV); repeatable "
        "(default: Allison saying 'hours', then 'goodbye')",
    )
    call.add_argument("--workdir", type=Path, default=Path(".state/calls"))
    call.add_argument(
        "--language",
        default="en",
        help="the language the bot speaks on this extension: its lines are transcribed in it "
        "and, without --say, the caller says 'hours' and 'goodbye' in it (default en; ru)",
    )
    call.set_defaults(func=cmd_call)

    replay = sub.add_parser(
        "replay",
        help="feed the caller's side of a packet capture into the bot (real pipeline and "
        "dialog, no Asterisk) and write what the bot said",
    )
    replay.add_argument("capture", type=Path, help="pcap or pcapng file")
    replay.add_argument(
        "--script", required=True, help="script name (in dialog.scripts_dir) or YAML file path"
    )
    replay.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where bot.wav, caller.wav, transcript.jsonl and summary.json go "
        "(default: .state/replays/<capture name>)",
    )
    replay.add_argument(
        "--speed", type=float, default=1.0, help="play the capture this many times faster"
    )
    replay.add_argument(
        "--ssrc", type=_ssrc, default=None, help="the caller's stream by SSRC (hex, 0x...)"
    )
    replay.add_argument(
        "--from",
        dest="source",
        type=_address,
        default=None,
        metavar="HOST:PORT",
        help="the caller's stream by its source address",
    )
    replay.add_argument(
        "--dtmf-pt",
        type=int,
        default=None,
        metavar="PT",
        help="telephone-event payload type (default: from the capture's SDP, else 101)",
    )
    impair = replay.add_argument_group("network trouble (seeded, reproducible)")
    impair.add_argument("--loss", type=float, default=0.0, metavar="PCT", help="drop packets")
    impair.add_argument(
        "--jitter", type=float, default=0.0, metavar="MS", help="delay each packet 0..MS ms"
    )
    impair.add_argument(
        "--reorder", type=float, default=0.0, metavar="PCT", help="swap a packet with the next"
    )
    impair.add_argument(
        "--duplicate", type=float, default=0.0, metavar="PCT", help="send packets twice"
    )
    impair.add_argument(
        "--ssrc-change-at",
        type=float,
        default=None,
        metavar="S",
        help="new SSRC, sequence and timestamp base from S seconds into the capture",
    )
    impair.add_argument(
        "--truncate",
        type=float,
        default=0.0,
        metavar="PCT",
        help="cut packets short at a random byte (malformed RTP)",
    )
    impair.add_argument("--seed", type=int, default=0, help="random seed for the above")
    replay.add_argument(
        "--tail",
        type=float,
        default=1.0,
        metavar="S",
        help="after the capture, end once the bot has listened this long with nothing to do",
    )
    replay.add_argument("--caller-id", default="", help="caller_id for templates")
    replay.add_argument("--called", default="", help="called for templates")
    replay.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a channel variable for templates as channel.NAME; repeatable",
    )
    replay.add_argument("--log-level", default=None, help="e.g. INFO to see each turn")
    replay.set_defaults(func=cmd_replay)

    models = sub.add_parser(
        "models", help="show installed speech models and what scripts need; download more"
    )
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_list = models_sub.add_parser(
        "list",
        help="installed models, models available to fetch, and the ASR/TTS each script would use",
    )
    models_list.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    models_list.add_argument("--scripts", type=Path, default=Path("prompts"), help="scripts dir")
    fetch = models_sub.add_parser(
        "fetch", help="download a model from the catalogue into models/<lang>/{vosk,piper}/"
    )
    fetch.add_argument("name", help="catalogue name, e.g. vosk-model-small-de-0.15")
    fetch.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    fetch.add_argument("--force", action="store_true", help="download and replace even if there")
    fetch.add_argument(
        "--mirror",
        default=None,
        metavar="URL",
        help="download every file as URL/FILENAME instead (default: $VOICEBOT_MODELS_MIRROR)",
    )
    models.set_defaults(func=cmd_models)
    _add_campaign_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except VoicebotError as exc:  # config errors and the like, before logging is set up
        print(f"voicebot: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
