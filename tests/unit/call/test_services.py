"""The models every call shares: one pair per script language, and languages left out."""

from __future__ import annotations

import pytest

from tests.support.doubles import ListAsr, ToneTts
from voicebot.call import SpeechServices
from voicebot.errors import ModelError


def test_each_language_gets_its_pair_and_an_undeclared_one_the_default() -> None:
    english, russian = (ListAsr([]), ToneTts()), (ListAsr([]), ToneTts())
    services = SpeechServices(*english, by_language={"en": english, "ru": russian})
    assert services.for_language("ru") == russian
    assert services.for_language("de") == english


def test_a_language_left_out_at_start_refuses_its_calls_with_the_reason() -> None:
    services = SpeechServices(
        ListAsr([]), ToneTts(), unavailable={"ru": "RHVoice is not installed in .state/rhvoice"}
    )
    with pytest.raises(ModelError, match="language 'ru': RHVoice is not installed"):
        services.for_language("ru")
