"""call.meaning: a menu's phrases embedded once, the caller's words compared off the event loop,
the turn core always answered; and the labelled paraphrase set the bench runs on."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.audio import ALLISON
from tests.support.doubles import ListAsr, ToneTts
from tests.support.embedders import KeywordEmbedder
from voicebot.call import CallSession, SpeechServices
from voicebot.call.commands import Understand
from voicebot.call.meaning import MeaningMatcher, load_meaning, meaning_text, menu_of, menus
from voicebot.call.turns import Understood
from voicebot.capture.wav import read_wav
from voicebot.config import VadConfig
from voicebot.dialog.engine import DialogState, Heard, Recognized, step
from voicebot.dialog.meaning import MARGIN, NON_ANSWERS, THRESHOLD
from voicebot.dialog.parser import load_script, parse_script
from voicebot.media.codecs import ULAW, resample
from voicebot.media.endpoint import PortAllocator, RtpEndpoint
from voicebot.media.peer import RtpPeer
from voicebot.speech.embed import UseEmbedder

ROOT = Path(__file__).resolve().parents[3]
SETS = ROOT / "tests" / "fixtures" / "meaning"
SCRIPT = parse_script(
    """
start: main
states:
  main:
    say: "Say hours, or goodbye."
    expect:
      hours: {phrases: ["opening hours", "hours"], goto: hours}
      bye: {phrases: ["goodbye"], goto: bye}
  hours:
    say: "Nine to five."
    understand: phrases
    expect:
      more: {phrases: ["something else"], goto: again}
      bye: {phrases: ["goodbye"], goto: bye}
  again:
    say: "Anything else?"
    expect:
      hours: {phrases: ["opening hours", "hours"], goto: hours}
      bye: {phrases: ["goodbye"], goto: bye}
  bye:
    say: "Goodbye."
    hangup: true
""",
    "menu.yaml",
)
GROUPS = [
    ("open", "opening", "hours", "close"),
    ("goodbye", "bye", "done", "finished"),
    ("hold", "wait", "moment"),  # what NON_ANSWERS hold
]
MAIN = menu_of(SCRIPT.states["main"])


def embedder(**options: bool) -> KeywordEmbedder:
    return KeywordEmbedder(GROUPS, **options)


async def ready(**options: bool) -> tuple[MeaningMatcher, KeywordEmbedder]:
    words = embedder(**options)
    await words.load()
    matcher = MeaningMatcher(words)
    await matcher.prepare([SCRIPT])
    return matcher, words


# -- the matcher -------------------------------------------------------------------------------


async def test_each_menu_that_understands_by_meaning_is_embedded_once_in_one_batch() -> None:
    matcher, words = await ready()
    # main and again are the same menu; hours understands by phrases only.
    assert menus(SCRIPT) == [MAIN]
    # One-word phrases also inside the script language's carrier sentences (English here).
    assert words.encoded == [
        [meaning_text(text) for text in NON_ANSWERS],
        ["opening hours", "hours", "i would like hours", "hours please", "what about hours",
         "goodbye", "i would like goodbye", "goodbye please", "what about goodbye"],
    ]  # fmt: skip
    assert await matcher.prepare([SCRIPT]) == 0 and len(words.encoded) == 2


async def test_a_russian_menus_words_are_carried_in_russian_sentences() -> None:
    russian = parse_script(
        """
language: ru
start: main
states:
  main:
    say: "Скажите часы работы или до свидания."
    expect:
      hours: {phrases: ["часы работы", "часы"], goto: bye}
      bye: {phrases: ["до свидания"], goto: bye}
  bye:
    say: "До свидания."
    hangup: true
""",
        "ru.yaml",
    )
    words = embedder()
    await words.load()
    matcher = MeaningMatcher(words)
    assert await matcher.prepare([russian]) == 6
    assert words.encoded[1] == [
        "часы работы", "часы", "мне нужно часы", "часы пожалуйста", "скажите часы",
        "до свидания",
    ]  # fmt: skip
    decision = await matcher.understand(menu_of(russian.states["main"]), "мне нужно часы")
    # The log names the script's phrase the words came closest to, never a carrier sentence.
    assert decision.best is not None
    assert decision.best.phrase in ("часы работы", "часы", "до свидания")


@pytest.mark.parametrize(
    ("state", "text", "intent", "why"),
    [
        ("main", "When do you open tomorrow?", "hours", "'hours' by meaning score 1.00"),
        ("again", "I'm done, thanks", "bye", "'bye' by meaning"),
        # Words near no intent.
        ("main", "What's the weather like?", None, f"under the threshold {THRESHOLD:.2f}"),
        # As close to a non-answer as to the intent.
        ("main", "hold on, when do you open?", None, "no closer than the non-answer 'hold on'"),
        # One word is left to the phrases.
        ("main", "closing?", None, "1 word(s): left to the phrases"),
        ("main", "...", None, "0 word(s)"),
    ],
)
async def test_words_are_matched_to_the_intent_they_mean(
    state: str, text: str, intent: str | None, why: str
) -> None:
    matcher, _ = await ready()
    decision = await matcher.understand(menu_of(SCRIPT.states[state]), text)
    assert (decision.match.intent if decision.match else None) == intent
    assert why in decision.reason
    match = await matcher.match(SCRIPT, state, text)
    assert (match.intent if match else None) == intent


async def test_a_menu_first_seen_on_a_call_is_embedded_then_once() -> None:
    matcher, words = await ready()
    menu = (("later", ("we close at five",)), ("bye", ("goodbye",)))
    for _ in range(2):
        decision = await matcher.understand(menu, "when do you close")
        assert decision.match is not None and decision.match.intent == "later"
    assert words.encoded[2:] == [
        ["we close at five", "goodbye"],
        ["when do you close"],
        ["when do you close"],
    ]


async def test_the_turn_core_is_answered_with_its_token_even_when_the_model_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    matcher, words = await ready()
    answers: list[Understood] = []
    ask = Understand(7, "main", "when do you open", MAIN)
    await matcher.answer(ask, answers.append)
    assert answers[0].token == 7 and answers[0].meaning is not None
    assert answers[0].meaning.intent == "hours" and "by meaning" in answers[0].reason
    words.broken = True
    with caplog.at_level(logging.WARNING):
        await matcher.answer(Understand(8, "main", "my secret 4217 words", MAIN), answers.append)
    assert (answers[1].token, answers[1].meaning) == (8, None)
    assert answers[1].reason == "the comparison failed: RuntimeError"
    assert "intents by meaning failed in state 'main'" in caplog.text
    assert "4217" not in caplog.text and "secret" not in caplog.text


async def test_the_model_is_loaded_only_for_scripts_whose_menus_understand_by_meaning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    phrases_only = parse_script(
        """
start: main
defaults: {understand: phrases}
states:
  main:
    expect: {bye: {phrases: ["goodbye"], goto: bye}}
  bye: {say: "Bye.", hangup: true}
""",
        "p.yaml",
    )
    words = embedder()
    assert await load_meaning([phrases_only], words) is None and not words.loaded
    matcher = await load_meaning([phrases_only, SCRIPT], words)
    assert matcher is not None and matcher.menus == 1 and words.loaded
    with caplog.at_level(logging.INFO):
        assert await load_meaning([SCRIPT], embedder(missing=True)) is None
    [line] = [r for r in caplog.records if "intents by meaning" in r.getMessage()]
    assert line.levelno == logging.INFO
    assert "off, menus match by their phrases alone" in line.getMessage()


# -- a call ------------------------------------------------------------------------------------


async def test_on_a_call_words_no_phrase_fits_are_taken_by_meaning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    matcher, _ = await ready()
    services = SpeechServices(ListAsr(["When do you open tomorrow?"]), ToneTts(0.002))
    services.meaning = matcher
    endpoint = await RtpEndpoint.open(PortAllocator("127.0.0.1", 41190, 41199), "127.0.0.1")
    peer = await RtpPeer.open()
    endpoint.set_remote(*peer.address)
    peer.bot = ("127.0.0.1", endpoint.local_port)
    session = CallSession(call_id="m-1", endpoint=endpoint, codec=ULAW, script=SCRIPT,
                          services=services, vad=VadConfig())  # fmt: skip
    running = asyncio.create_task(session.run())
    words, rate = read_wav(ALLISON / "hours.wav")
    try:
        with caplog.at_level(logging.INFO, logger="voicebot.call.session"):
            for _ in range(1000):
                if session.awaiting_caller():
                    break
                await asyncio.sleep(0.02)
            await peer.send_speech(resample(words, rate, ULAW.sample_rate))
            for _ in range(1000):
                if any(line.text == "Nine to five." for line in session.transcript):
                    break
                await asyncio.sleep(0.02)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        peer.close()
        await endpoint.aclose()
    heard = next(line for line in session.transcript if line.who == "caller")
    assert (heard.state, heard.intent) == ("main", "hours")
    assert "call m-1: intent 'hours' by meaning score 1.00 margin" in caplog.text
    assert "tomorrow" not in caplog.text  # the caller's words only as their shape


# -- the labelled set --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "least"),
    [("paraphrases", (60, 30, 35, 20)), ("heldout", (30, 15, 15, 10)), ("fresh", (70, 25, 40, 24))],
)
def test_the_paraphrase_set_is_what_the_bench_needs(
    name: str, least: tuple[int, int, int, int]
) -> None:
    data = yaml.safe_load((SETS / f"{name}.yaml").read_text(encoding="utf-8"))
    paraphrases, off_topic = data["paraphrases"], data["off_topic"]
    russian = [item for item in paraphrases if item["script"].startswith("ru/")]
    assert len(paraphrases) >= least[0] and len(russian) >= least[1]
    assert len(paraphrases) - len(russian) >= least[2] and len(off_topic) >= least[3]
    assert {item["script"].startswith("ru/") for item in off_topic} == {True, False}
    scripts = {name: load_script(ROOT / "prompts" / name) for name in
               {item["script"] for item in paraphrases + off_topic}}  # fmt: skip
    for item in paraphrases + off_topic:
        script = scripts[item["script"]]
        state = script.states[item["state"]]
        assert state.by_meaning, item
        if item.get("intent"):
            assert item["intent"] in {intent.name for intent in state.expect}, item
        phrases = {p.lower() for _, texts in state.meaning_menu for p in texts}
        assert item["text"].lower().strip(" .?!") not in phrases, item
        # What the set is about: words the phrases miss.
        _, actions = step(script, DialogState(current=state.name), Heard(item["text"]))
        recognized = next(a for a in actions if isinstance(a, Recognized))
        assert recognized.intent is None, item


def test_the_held_out_sets_share_nothing_with_the_development_set_or_the_scripts() -> None:
    def texts(name: str) -> set[str]:
        data = yaml.safe_load((SETS / f"{name}.yaml").read_text(encoding="utf-8"))
        return {meaning_text(item["text"]) for item in data["paraphrases"] + data["off_topic"]}

    held_out, development, fresh = texts("heldout"), texts("paraphrases"), texts("fresh")
    assert not held_out & development and not fresh & (held_out | development)
    scripts = [load_script(path) for path in sorted((ROOT / "prompts").glob("**/*.yaml"))]
    phrases = {meaning_text(text) for script in scripts for state in script.states.values()
               for _, texts in state.meaning_menu for text in texts}  # fmt: skip
    # The scripts' phrases and examples are written as an author would, never copied from a set.
    assert not (held_out | development | fresh) & phrases


# -- the real model ----------------------------------------------------------------------------


@pytest.mark.slow
async def test_the_real_model_takes_clear_paraphrases_and_leaves_non_answers() -> None:
    demo = load_script(ROOT / "prompts" / "demo.yaml")
    russian = load_script(ROOT / "prompts" / "ru" / "demo.yaml")
    delivery = load_script(ROOT / "prompts" / "delivery.yaml")
    matcher = await load_meaning([demo, russian, delivery], UseEmbedder())
    assert matcher is not None
    cases = [
        (demo, "main", "And what time do you open?", "hours"),
        (demo, "hours", "And where can I find you?", "address"),
        (russian, "main", "как до вас добраться", "address"),
        (demo, "main", "hold on a second", None),
        (demo, "hours", "um I'm not sure", None),
        (russian, "address", "подождите минутку", None),
        (demo, "main", "What's the weather like?", None),
        (demo, "hours", "Hmm.", None),  # one word: "bye" by meaning, 0.75
        # "please do" (yes) 0.72 by itself: the negation guard keeps it from yes, and the
        # carried "no, please" (0.86) takes it to no.
        (delivery, "redelivery_confirm", "please don't", "no"),
        (delivery, "redelivery_confirm", "yes, that would be great", "yes"),
    ]
    for script, state, text, intent in cases:
        match = await matcher.match(script, state, text)
        assert (match.intent if match else None) == intent, (text, match)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["paraphrases", "heldout", "fresh"])
def test_the_bench_runs_and_prints_the_goals(name: str) -> None:
    bench = [sys.executable, str(ROOT / "scripts" / "bench-meaning.py"), "--repeat", "1"]
    done = subprocess.run(
        [*bench, "--set", name],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    bars = f"threshold {THRESHOLD:.2f}, margin {MARGIN:.2f}"
    for words in ("accuracy to the right intent:", "off-topic no-match:", "wrong intents:",
                  "added time per match: p50", bars, f"{name}.yaml: "):  # fmt: skip
        assert words in done.stdout
