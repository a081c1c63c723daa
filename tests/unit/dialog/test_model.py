"""What a loaded script tells the rest of the bot: its fixed prompts, prompt heads, channel
variables."""

from __future__ import annotations

from pathlib import Path

from tests.support.dialog_scripts import ASK_ACCOUNT, BANK, TEMPLATES
from voicebot.dialog.parser import load_script, parse_script

ROOT = Path(__file__).resolve().parents[3]


def test_script_lists_fixed_prompts_and_channel_variables() -> None:
    script = parse_script(TEMPLATES, "t.yaml")
    assert script.channel_variables() == {"LINE"}
    assert "Sorry, I didn't get that." in script.prompts()
    assert not any("{" in text for text in script.prompts())
    bank_prompts = parse_script(BANK, "bank.yaml").prompts()
    assert ASK_ACCOUNT in bank_prompts


def test_the_bank_scripts_prompt_heads() -> None:
    assert load_script(ROOT / "prompts" / "bank.yaml").prompt_heads() == {
        "You said",
        "The balance on account",
    }
