"""The pure dialog engine: scripts run event by event, actions out (no audio, no time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dialog_scripts import ASK_ACCOUNT, BANK, TEMPLATES, hook_script, write
from voicebot.dialog.engine import (
    MAX_VARIABLE_CHARS,
    CallStarted,
    CallWebhook,
    DialogEngine,
    DoNotCall,
    Hangup,
    Heard,
    KeyPressed,
    Listen,
    NoInput,
    Recognized,
    Say,
    SlotFilled,
    Transfer,
    WebhookDone,
    WebhookFailed,
    step,
)
from voicebot.dialog.expectation import AnswerKind, Expectation
from voicebot.dialog.parser import load_script, parse_script

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "prompts" / "demo.yaml"


FOUR_DIGITS = Expectation(AnswerKind.DIGITS, min_length=4, max_length=4)


def says(actions: list) -> list[str]:
    return [a.text for a in actions if isinstance(a, Say)]


def test_demo_script_greets_and_listens() -> None:
    engine = DialogEngine(load_script(DEMO))
    actions = engine.handle(CallStarted())
    assert "voicebot demo" in says(actions)[0]
    assert isinstance(actions[-1], Listen)
    assert "hours" in actions[-1].phrases


def test_demo_spoken_choice_goes_to_branch_then_goodbye_hangs_up() -> None:
    engine = DialogEngine(load_script(DEMO))
    engine.handle(CallStarted())
    actions = engine.handle(Heard("Hours."))
    assert actions[0] == Recognized("main", "hours", "Hours.")
    assert "Monday to Friday" in says(actions)[0]
    actions = engine.handle(Heard("goodbye"))
    # The goodbye is a recorded prompt after the synthesized thanks.
    assert says(actions) == ["Thank you for calling.", "[audio audio/goodbye.wav]"]
    assert isinstance(actions[-1], Hangup)
    assert engine.ended
    assert engine.handle(Heard("hello?")) == []


def test_no_input_reprompts_then_escapes_after_max_retries() -> None:
    engine = DialogEngine(load_script(DEMO))
    greeting = says(engine.handle(CallStarted()))[0]
    first = engine.handle(NoInput())
    assert says(first) == ["Sorry, I didn't hear anything.", greeting]
    second = engine.handle(NoInput())
    assert says(second) == ["Sorry, I didn't hear anything.", greeting]
    third = engine.handle(NoInput())  # max_retries: 2 → on_max_retries: goto goodbye
    assert says(third) == ["Thank you for calling.", "[audio audio/goodbye.wav]"]
    assert isinstance(third[-1], Hangup)


def test_no_match_and_no_input_share_the_retry_count() -> None:
    engine = DialogEngine(load_script(DEMO))
    engine.handle(CallStarted())
    assert says(engine.handle(Heard("pizza")))[0] == "Sorry, I didn't get that."
    engine.handle(NoInput())
    assert isinstance(engine.handle(Heard("pizza"))[-1], Hangup)


def test_retries_reset_when_the_state_changes() -> None:
    engine = DialogEngine(load_script(DEMO))
    engine.handle(CallStarted())
    engine.handle(NoInput())
    engine.handle(NoInput())
    engine.handle(Heard("address"))
    assert engine.state is not None and engine.state.retries == 0


def test_dtmf_selects_an_intent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
start: menu
states:
  menu:
    say: "Press 1 for sales."
    expect:
      sales: {phrases: ["sales"], dtmf: "1", goto: bye}
  bye:
    say: Bye.
    hangup: true
""",
    )
    engine = DialogEngine(load_script(path))
    engine.handle(CallStarted())
    actions = engine.handle(KeyPressed("1"))
    assert says(actions) == ["Bye."] and isinstance(actions[-1], Hangup)


# -- the full script language (issue #3) ----------------------------------------------------

TO_OPERATOR = Transfer(context="voicebot-transfer", extension="operator", priority=1, endpoint=None)


def bank() -> DialogEngine:
    engine = DialogEngine(parse_script(BANK, "bank.yaml"))
    engine.handle(CallStarted({"caller_id": "5551234", "called": "100"}))
    return engine


def engine_for(text: str, variables: dict[str, str] | None = None) -> DialogEngine:
    engine = DialogEngine(parse_script(text, "t.yaml"))
    engine.handle(CallStarted(variables or {}))
    return engine


def test_bank_script_happy_path_by_speech() -> None:
    engine = DialogEngine(parse_script(BANK, "bank.yaml"))
    actions = engine.handle(CallStarted())
    assert says(actions) == [
        "Hello, you've reached Demo Bank. Say balance or operator, or press 1 or 0."
    ]
    listen = actions[-1]
    assert isinstance(listen, Listen) and listen.timeout_s == 5.0
    assert listen.phrases == (
        "balance",
        "how much money",
        "check my account",
        "operator",
        "agent",
        "human",
        "representative",
    )
    # The turn taker learns what would complete the answer: one of the intents' phrases.
    assert listen.expectation == Expectation(
        AnswerKind.MENU,
        intents=(
            ("balance", ("balance", "how much money", "check my account")),
            ("operator", ("operator", "agent", "human", "representative")),
        ),
    )
    actions = engine.handle(Heard("I'd like to check my account please"))
    assert actions[0] == Recognized("main", "balance", "I'd like to check my account please")
    assert says(actions) == [ASK_ACCOUNT]
    actions = engine.handle(Heard("four two one seven"))
    assert actions[:2] == [
        Recognized("account", "account", "four two one seven"),
        SlotFilled("account", "4217"),
    ]
    assert says(actions) == ["You said 4 2 1 7. Is that right?"]
    actions = engine.handle(Heard("yes"))
    assert actions[0] == Recognized("confirm", "yes", "yes")  # `yes:` is a name, not true
    assert says(actions) == ["The balance on account 4 2 1 7 is 42 dollars. Goodbye."]
    assert actions[-1] == Hangup() and engine.ended
    assert engine.variables["account"] == "4217"


def test_bank_script_by_keys_and_a_no_that_asks_again() -> None:
    engine = bank()
    assert says(engine.handle(KeyPressed("1"))) == [ASK_ACCOUNT]
    for key in "123":
        assert engine.handle(KeyPressed(key)) == [Listen(5.0, expectation=FOUR_DIGITS)]
    assert engine.state is not None and engine.state.keyed == "123"
    actions = engine.handle(KeyPressed("4"))  # length 4: the 4th key completes
    assert SlotFilled("account", "1234") in actions
    assert says(actions) == ["You said 1 2 3 4. Is that right?"]
    assert says(engine.handle(KeyPressed("2"))) == [ASK_ACCOUNT]
    assert engine.state is not None and engine.state.keyed == ""


def test_bank_operator_transfers_and_ends() -> None:
    engine = bank()
    actions = engine.handle(Heard("an agent"))
    assert actions[1:] == [Say("Transferring you to an operator."), TO_OPERATOR]
    assert engine.ended
    assert engine.handle(Heard("hello")) == []


def test_bank_max_retries_escape_to_the_operator() -> None:
    engine = bank()
    engine.handle(KeyPressed("1"))
    first = engine.handle(Heard("pizza"))
    assert first[0] == Recognized("account", None, "pizza")
    assert says(first) == ["Sorry, I didn't get that.", ASK_ACCOUNT]
    assert says(engine.handle(NoInput())) == ["Sorry, I didn't hear anything.", ASK_ACCOUNT]
    assert engine.state is not None and engine.state.retries == 2
    third = engine.handle(Heard("one two"))  # too short: a no-match, the third miss
    assert third[-1] == TO_OPERATOR


def test_dtmf_mid_prompt_selects_an_intent() -> None:
    engine = DialogEngine(parse_script(BANK, "bank.yaml"))
    engine.handle(CallStarted())  # the greeting is still playing
    actions = engine.handle(KeyPressed("0"))
    assert actions[0] == Recognized("main", "operator", "0")
    assert actions[-1] == TO_OPERATOR


def test_unknown_key_in_expect_is_a_no_match() -> None:
    engine = bank()
    actions = engine.handle(KeyPressed("7"))
    assert actions[0] == Recognized("main", None, "7")
    assert says(actions)[0] == "Sorry, I didn't get that."


def test_barge_in_flag_is_carried_on_say() -> None:
    engine = engine_for(
        """
start: a
defaults: {barge_in: false}
states:
  a:
    say: ["Important notice.", "Press 1."]
    expect: {one: {dtmf: "1", goto: b}}
  b:
    say: Bye.
    barge_in: true
    hangup: true
"""
    )
    assert engine.handle(NoInput())[1:3] == [
        Say("Important notice.", barge_in=False),
        Say("Press 1.", barge_in=False),
    ]
    assert engine.handle(KeyPressed("1"))[1] == Say("Bye.", barge_in=True)


COLLECT = """
start: ask
states:
  ask:
    say: Your code?
    collect: {{slot: code, type: {type}{options}, goto: done}}
  done:
    say: "Got {{code}}."
    hangup: true
"""


def collect_engine(kind: str, options: str = "") -> DialogEngine:
    return engine_for(COLLECT.format(type=kind, options=options))


@pytest.mark.parametrize(
    ("said", "value"),
    [("four two one seven", "4217"), ("forty two", "42"), ("4 2 1 7", "4217")],
)
def test_digits_by_speech(said: str, value: str) -> None:
    engine = collect_engine("digits", ", min_length: 2, max_length: 6")
    actions = engine.handle(Heard(said))
    assert SlotFilled("code", value) in actions
    assert says(actions) == [f"Got {value}."]


def test_digits_by_speech_of_the_wrong_length_is_a_no_match() -> None:
    engine = collect_engine("digits", ", length: 4")
    actions = engine.handle(Heard("forty two"))
    assert actions[0] == Recognized("ask", None, "forty two")
    assert says(actions) == ["Sorry, I didn't get that.", "Your code?"]


def test_digits_keyed_with_hash_termination() -> None:
    engine = collect_engine("digits", ", min_length: 2, max_length: 6")
    two_to_six = Expectation(AnswerKind.DIGITS, min_length=2, max_length=6)
    for key in "123":
        assert engine.handle(KeyPressed(key)) == [Listen(5.0, expectation=two_to_six)]
    actions = engine.handle(KeyPressed("#"))
    assert actions[:2] == [Recognized("ask", "code", "123"), SlotFilled("code", "123")]


def test_digits_keyed_max_length_completes_without_hash() -> None:
    engine = collect_engine("digits", ", min_length: 2, max_length: 3")
    engine.handle(KeyPressed("9"))
    engine.handle(KeyPressed("0"))
    assert SlotFilled("code", "901") in engine.handle(KeyPressed("1"))


def test_digits_hash_too_early_is_a_no_match_and_clears_the_entry() -> None:
    engine = collect_engine("digits", ", min_length: 2, max_length: 6")
    engine.handle(KeyPressed("5"))
    actions = engine.handle(KeyPressed("#"))
    assert actions[0] == Recognized("ask", None, "5")
    assert says(actions) == ["Sorry, I didn't get that.", "Your code?"]
    assert engine.state is not None and engine.state.keyed == "" and engine.state.retries == 1


def test_digits_silence_after_keys_completes_when_long_enough() -> None:
    engine = collect_engine("digits", ", min_length: 2")
    engine.handle(KeyPressed("4"))
    engine.handle(KeyPressed("2"))
    assert SlotFilled("code", "42") in engine.handle(NoInput())


def test_digits_too_few_keys_then_silence_is_a_no_match() -> None:
    engine = collect_engine("digits", ", length: 4")
    engine.handle(KeyPressed("1"))
    engine.handle(KeyPressed("2"))
    actions = engine.handle(NoInput())
    assert says(actions)[0] == "Sorry, I didn't get that."  # not "didn't hear anything"
    assert engine.state is not None and engine.state.keyed == ""


def test_digits_star_starts_the_entry_over() -> None:
    engine = collect_engine("digits", ", length: 2")
    engine.handle(KeyPressed("1"))
    two = Expectation(AnswerKind.DIGITS, min_length=2, max_length=2)
    assert engine.handle(KeyPressed("*")) == [Listen(5.0, expectation=two)]
    engine.handle(KeyPressed("3"))
    assert SlotFilled("code", "34") in engine.handle(KeyPressed("4"))


@pytest.mark.parametrize(
    ("event", "value"),
    [
        (Heard("yes please"), "yes"),
        (Heard("no"), "no"),
        (KeyPressed("1"), "yes"),
        (KeyPressed("2"), "no"),
    ],
)
def test_yes_no(event: Heard | KeyPressed, value: str) -> None:
    engine = collect_engine("yes_no")
    assert SlotFilled("code", value) in engine.handle(event)


def test_yes_no_listens_for_yes_and_no_and_rejects_other_keys() -> None:
    engine = DialogEngine(parse_script(COLLECT.format(type="yes_no", options=""), "t.yaml"))
    assert engine.handle(CallStarted())[-1] == Listen(
        5.0, ("yes", "no"), expectation=Expectation(AnswerKind.YES_NO)
    )
    assert says(engine.handle(KeyPressed("5")))[0] == "Sorry, I didn't get that."
    assert says(engine.handle(Heard("maybe")))[0] == "Sorry, I didn't get that."


def test_number_by_speech_and_by_keys() -> None:
    engine = collect_engine("number", ", min: 1, max: 100")
    assert SlotFilled("code", "42") in engine.handle(Heard("forty two"))
    engine = collect_engine("number", ", min: 1, max: 100")
    engine.handle(KeyPressed("0"))
    engine.handle(KeyPressed("7"))
    assert SlotFilled("code", "7") in engine.handle(KeyPressed("#"))
    engine = collect_engine("number")
    engine.handle(KeyPressed("1"))
    engine.handle(KeyPressed("5"))
    assert SlotFilled("code", "15") in engine.handle(NoInput())


def test_number_out_of_range_is_a_no_match() -> None:
    engine = collect_engine("number", ", min: 1, max: 100")
    assert says(engine.handle(Heard("two hundred")))[0] == "Sorry, I didn't get that."


def test_text_takes_any_utterance_but_not_keys() -> None:
    engine = collect_engine("text")
    assert says(engine.handle(KeyPressed("1")))[0] == "Sorry, I didn't get that."
    actions = engine.handle(Heard("My card was stolen."))
    assert SlotFilled("code", "My card was stolen.") in actions
    assert says(actions) == ["Got My card was stolen.."]


def test_templating_builtins_channel_filters_and_escapes() -> None:
    engine = DialogEngine(parse_script(TEMPLATES, "t.yaml"))
    actions = engine.handle(CallStarted({"caller_id": "555", "called": "100", "channel.LINE": "B"}))
    assert says(actions) == ["Caller 5 5 5 called 100 on line B.", "{literal}  "]
    assert says(engine.handle(Heard("Ada"))) == ["Hi Ada."]


def test_templating_undefined_variables_render_empty() -> None:
    engine = DialogEngine(parse_script(TEMPLATES, "t.yaml"))
    assert says(engine.handle(CallStarted()))[0] == "Caller  called  on line ."


def test_transfer_to_an_endpoint_with_priority_defaults() -> None:
    engine = engine_for(
        """
start: a
states:
  a:
    transfer: {endpoint: "PJSIP/operator"}
"""
    )
    assert engine.state is not None and engine.state.ended
    engine = DialogEngine(
        parse_script(
            "start: a\nstates:\n  a:\n    transfer: {context: c, extension: 100, priority: 3}\n",
            "t.yaml",
        )
    )
    assert engine.handle(CallStarted()) == [Transfer("c", "100", 3, None)]


@pytest.mark.parametrize(
    ("transfer", "expected", "target"),
    [
        ("{context: c, extension: 100}", Transfer("c", "100", 1, None), "c,100,1"),
        ("{context: c, extension: 100, label: agent}", Transfer("c", "100", None, None, "agent"),
         "c,100,agent"),
        ("{endpoint: PJSIP/op}", Transfer(None, None, None, "PJSIP/op"), "endpoint PJSIP/op"),
    ],
)  # fmt: skip
def test_a_transfer_goes_to_a_priority_a_label_or_an_endpoint(
    transfer: str, expected: Transfer, target: str
) -> None:
    script = f"start: a\nstates:\n  a:\n    transfer: {transfer}\n"
    [command] = DialogEngine(parse_script(script, "t.yaml")).handle(CallStarted())
    assert command == expected and isinstance(command, Transfer) and command.target == target


WEBHOOK = """
start: ask
states:
  ask:
    say: Account?
    collect: {slot: account, type: digits, length: 4, goto: lookup}
  lookup:
    say: "One moment."
    webhook:
      url: "https://bank.example/accounts/{account}?caller={caller_id}"
      method: put
      body: {account: "{account}", nested: ["{caller_id}", 7]}
      save_as: result
      timeout: 2s
      goto: report
      on_error: {say: "The bank is closed.", goto: ask}
  report:
    say: "Your balance is {result.balance} {result.currency.code}."
    hangup: true
"""


def webhook_engine() -> tuple[DialogEngine, list]:
    engine = engine_for(WEBHOOK, {"caller_id": "555"})
    return engine, engine.handle(Heard("one two three four"))


def test_webhook_request_is_rendered_and_the_engine_waits() -> None:
    engine, actions = webhook_engine()
    assert actions[2:] == [
        Say("One moment."),
        CallWebhook(
            url="https://bank.example/accounts/1234?caller=555",
            method="PUT",
            body={"account": "1234", "nested": ["555", 7]},
            timeout_s=2.0,
        ),
    ]
    assert engine.state is not None and engine.state.waiting
    assert engine.handle(Heard("hello?")) == []
    assert engine.handle(NoInput()) == []
    assert engine.handle(KeyPressed("1")) == []
    assert engine.state.waiting and engine.state.current == "lookup"


def test_webhook_success_saves_the_answer_for_later_templates() -> None:
    engine, _ = webhook_engine()
    data = {"balance": 42, "currency": {"code": "USD"}}
    actions = engine.handle(WebhookDone(data))
    data["balance"] = 0  # the dialog keeps its own copy
    assert actions == [Say("Your balance is 42 USD."), Hangup()]
    assert engine.variables["result"]["currency"]["code"] == "USD"
    with pytest.raises(TypeError):
        engine.variables["result"]["balance"] = 1


def test_webhook_failure_runs_on_error() -> None:
    engine, _ = webhook_engine()
    actions = engine.handle(WebhookFailed("HTTP 500"))
    assert says(actions) == ["The bank is closed.", "Account?"]
    assert engine.state is not None and not engine.state.waiting
    assert engine.handle(WebhookDone({})) == []  # a late answer is ignored


def test_webhook_default_on_error_apologizes_and_hangs_up() -> None:
    engine = engine_for(
        """
start: a
states:
  a:
    webhook: {url: "http://localhost/x", goto: b}
  b:
    hangup: true
"""
    )
    assert engine.state is not None and engine.state.waiting
    assert engine.handle(WebhookFailed("timeout")) == [
        Say("Sorry, something went wrong."),
        Hangup(),
    ]
    assert engine.ended


def test_webhook_get_without_body_and_without_save_as() -> None:
    script = parse_script(
        "start: a\nstates:\n  a:\n    webhook: {url: 'http://h/{called}', method: GET, goto: b}\n"
        "  b:\n    say: done\n    hangup: true\n",
        "t.yaml",
    )
    engine = DialogEngine(script)
    assert engine.handle(CallStarted({"called": "100"})) == [
        CallWebhook("http://h/100", "GET", None, 5.0)
    ]
    assert engine.handle(WebhookDone({"x": 1})) == [Say("done"), Hangup()]
    assert "x" not in engine.variables


def test_follow_redirects_reaches_the_request() -> None:
    script = parse_script(hook_script("https://h/a", "      follow_redirects: true\n"), "t.yaml")
    assert script.states["a"].webhook is not None
    assert script.states["a"].webhook.follow_redirects
    assert DialogEngine(script).handle(CallStarted()) == [
        CallWebhook("https://h/a", "POST", None, 5.0, follow_redirects=True)
    ]
    default = parse_script(hook_script("https://h/a"), "t.yaml")
    first = DialogEngine(default).handle(CallStarted())[0]
    assert isinstance(first, CallWebhook)
    assert first.follow_redirects is False


def test_hostile_values_fill_one_segment_one_query_value_one_json_string() -> None:
    script = parse_script(
        hook_script("https://h/customers/{caller_id}?line={channel.LINE}").replace(
            "      goto: b", "      body: {caller: '{caller_id}'}\n      goto: b"
        ),
        "t.yaml",
    )
    hostile = '1/../../admin?delete=all#", "admin": true'
    [request] = DialogEngine(script).handle(
        CallStarted({"caller_id": hostile, "channel.LINE": "a&b=c"})
    )
    assert isinstance(request, CallWebhook)
    assert request.url == (
        "https://h/customers/1%2F..%2F..%2Fadmin%3Fdelete%3Dall%23%22%2C%20%22admin%22%3A%20true"
        "?line=a%26b%3Dc"
    )
    assert request.body == {"caller": hostile}


def test_state_variables_are_read_only_copies() -> None:
    variables = {"caller_id": "1"}
    engine = engine_for(TEMPLATES, variables)
    variables["caller_id"] = "2"
    assert engine.variables["caller_id"] == "1"
    before = engine.state
    engine.handle(Heard("Ada"))
    assert before is not None and "name" not in before.variables


def test_a_transfer_sets_its_channel_variables_rendered_on_one_bounded_line() -> None:
    script = """
start: ask
states:
  ask:
    collect: {slot: account, type: text, goto: agent}
  agent:
    transfer:
      context: agents
      extension: "200"
      set: {ACCOUNT: "{account}", INTENT: billing, NOTE: "{caller_id} said {account}"}
"""
    engine = DialogEngine(parse_script(script, "t.yaml"))
    engine.handle(CallStarted({"caller_id": "100"}))
    said = "line one\nline two " + "x" * 400
    [transfer] = [c for c in engine.handle(Heard(said)) if isinstance(c, Transfer)]
    variables = dict(transfer.variables)
    assert list(variables) == ["ACCOUNT", "INTENT", "NOTE"]
    assert variables["ACCOUNT"].startswith("line one line two x")
    assert len(variables["ACCOUNT"]) == MAX_VARIABLE_CHARS
    assert variables["INTENT"] == "billing"
    assert variables["NOTE"].startswith("100 said line one line two")


OUTBOUND = """
start: greet
on_machine: voicemail
states:
  greet:
    say: "Hello {contact.first_name}, your parcel {contact.parcel} comes today."
    expect:
      stop: {phrases: ["don't call me again"], goto: stop}
  stop:
    dnc: true
    say: "You will not be called again."
    hangup: true
  voicemail:
    say: "Hello {contact.first_name}, this is Parcel Express. Please call us back."
    hangup: true
"""


def test_an_outbound_call_greets_the_contact_by_their_columns() -> None:
    script = parse_script(OUTBOUND)
    variables = {"contact.first_name": "Anna", "contact.parcel": "P-17"}
    _, actions = step(script, None, CallStarted(variables))
    assert actions[0] == Say("Hello Anna, your parcel P-17 comes today.")


def test_an_answering_machine_begins_in_on_machine() -> None:
    script = parse_script(OUTBOUND)
    dialog, actions = step(script, None, CallStarted({"contact.first_name": "Anna"}, "voicemail"))
    assert dialog.path == ("voicemail",)
    assert actions == [Say("Hello Anna, this is Parcel Express. Please call us back."), Hangup()]


def test_a_dnc_state_puts_the_number_on_the_do_not_call_list() -> None:
    script = parse_script(OUTBOUND)
    dialog, _ = step(script, None, CallStarted())
    _, actions = step(script, dialog, Heard("don't call me again"))
    assert DoNotCall() in actions and actions[-1] == Hangup()


def test_a_branch_may_read_the_contacts_columns() -> None:
    script = parse_script(
        "start: a\nstates:\n  a:\n    branch:\n      - if: 'contact.tier == \"gold\"'\n"
        "        goto: g\n      - else: b\n  g: {say: gold, hangup: true}\n"
        "  b: {say: basic, hangup: true}\n"
    )
    assert step(script, None, CallStarted({"contact.tier": "gold"}))[1][0] == Say("gold")
    assert step(script, None, CallStarted({"contact.tier": "silver"}))[1][0] == Say("basic")
