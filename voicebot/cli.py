"""Command line: argparse → Config → subcommands. Domain code never sees argparse."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .config import Config, load_config
from .errors import AriAuthError, ScriptError, VoicebotError

log = logging.getLogger("voicebot")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 2


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
    from .app import serve

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
    from .dialog.script import load_script

    failed = 0
    for file in args.files:
        try:
            script = load_script(Path(file))
        except ScriptError as exc:
            print(exc, file=sys.stderr)
            failed += 1
        else:
            print(f"{file}: ok ({len(script.states)} states, start '{script.start}')")
    return EXIT_INVALID if failed else EXIT_OK


def cmd_call(args: argparse.Namespace) -> int:
    from .callprobe import load_utterances, run_probe_call

    config = _config(args)
    _setup_logging("WARNING")
    try:
        utterances = load_utterances(args.say)
        args.workdir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(
            run_probe_call(
                config,
                extension=args.extension,
                target=args.target,
                utterances=utterances,
                wait_for_bye=args.say is None,
                workdir=args.workdir,
            )
        )
    except VoicebotError as exc:
        print(f"call failed: {exc}", file=sys.stderr)
        return EXIT_ERROR


def cmd_chat(args: argparse.Namespace) -> int:
    from .dialog.chat import chat_variables, run_chat
    from .dialog.script import load_script

    try:
        script = load_script(Path(args.file))
    except ScriptError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    variables = chat_variables(args.caller_id, args.called, args.var)
    if isinstance(variables, str):
        print(f"voicebot chat: {variables}", file=sys.stderr)
        return EXIT_INVALID

    def stdin_lines() -> Iterator[str]:
        while line := sys.stdin.readline():
            yield line

    try:
        return asyncio.run(
            run_chat(
                script,
                stdin_lines(),
                sys.stdout,
                variables=variables,
                echo=not sys.stdin.isatty(),
            )
        )
    except KeyboardInterrupt:
        print(file=sys.stdout)
        return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from .modelstore import run_fetch, run_list

    if args.models_command == "fetch":
        return run_fetch(args.name, args.models_dir, force=args.force, mirror=args.mirror)
    return run_list(args.models_dir, args.scripts)


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

    chat = sub.add_parser(
        "chat",
        help="talk to a dialog script in the terminal (type what the caller says; "
        "#123 presses keys, an empty line is silence, Ctrl-D ends)",
    )
    chat.add_argument("file", help="dialog script (YAML)")
    chat.add_argument("--caller-id", default="1000", help="the caller's number (caller_id)")
    chat.add_argument("--called", default="100", help="the dialed extension (called)")
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
    call.set_defaults(func=cmd_call)

    models = sub.add_parser(
        "models", help="show installed speech models and what scripts need; download more"
    )
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_list = models_sub.add_parser(
        "list",
        help="installed models, models available to fetch, and the ASR/TTS each script would use",
    )
    models_list.add_argument("--models-dir", type=Path, default=Path("models"))
    models_list.add_argument("--scripts", type=Path, default=Path("prompts"), help="scripts dir")
    fetch = models_sub.add_parser(
        "fetch", help="download a model from the catalogue into models/<lang>/{vosk,piper}/"
    )
    fetch.add_argument("name", help="catalogue name, e.g. vosk-model-small-de-0.15")
    fetch.add_argument("--models-dir", type=Path, default=Path("models"))
    fetch.add_argument("--force", action="store_true", help="download and replace even if there")
    fetch.add_argument(
        "--mirror",
        default=None,
        metavar="URL",
        help="download every file as URL/FILENAME instead (default: $VOICEBOT_MODELS_MIRROR)",
    )
    models.set_defaults(func=cmd_models)
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
