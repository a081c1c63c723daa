"""Dialog scripts shared by the dialog tests: the bank of issue #3, a templating script, a
webhook state, and a helper that writes a script file."""

from __future__ import annotations

from pathlib import Path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


BANK = """\
name: Demo Bank
language: en
start: main
defaults:
  no_input_timeout: 5s        # silence after the prompt ends
  max_retries: 2              # per state, for no_input and no_match together
  barge_in: true              # caller speech or a key stops the prompt
  on_no_input: {say: "Sorry, I didn't hear anything."}
  on_no_match: {say: "Sorry, I didn't get that."}
  on_max_retries: {goto: operator}
states:
  main:
    say: "Hello, you've reached Demo Bank. Say balance or operator, or press 1 or 0."
    expect:
      balance:  {phrases: ["balance", "how much money", "check my account"], dtmf: "1", goto: account}
      operator: {phrases: ["operator", "agent", "human", "representative"], dtmf: "0", goto: operator}
  account:
    say: "Please say or type your four digit account number."
    collect: {slot: account, type: digits, length: 4, goto: confirm}
  confirm:
    say: "You said {account|digits}. Is that right?"
    expect:
      yes: {phrases: ["yes", "correct", "right"], dtmf: "1", goto: report}
      no:  {phrases: ["no", "wrong"], dtmf: "2", goto: account}
  report:
    say: "The balance on account {account|digits} is 42 dollars. Goodbye."
    hangup: true
  operator:
    say: "Transferring you to an operator."
    transfer: {context: voicebot-transfer, extension: operator}
"""  # noqa: E501 (the issue's example, verbatim)

ASK_ACCOUNT = "Please say or type your four digit account number."

TEMPLATES = """
start: a
states:
  a:
    say:
      - "Caller {caller_id|digits} called {called} on line {channel.LINE}."
      - "{{literal}} {name|upper} {name|lower}"
    collect: {slot: name, type: text, goto: b}
  b:
    say: "Hi {name}."
    hangup: true
"""


def hook_script(url: str, extra: str = "") -> str:
    """A script whose state ``a`` (line 3) calls ``url`` (line 5)."""
    return (
        f'start: a\nstates:\n  a:\n    webhook:\n      url: "{url}"\n      goto: b\n{extra}'
        "  b:\n    hangup: true\n"
    )
