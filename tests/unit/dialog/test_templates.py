"""Prompt and webhook templates: ``{variable|filter}`` parsed, looked up, rendered."""

from __future__ import annotations

import json
import re

import pytest

from voicebot.dialog.templates import (
    TemplateError,
    parse_template,
    render,
    render_value,
    well_formed,
)


def test_template_parsing_and_lookup() -> None:
    template = parse_template("A {x.y.0|upper} {{b}}")
    assert template.names == ("x.y.0",)
    assert template.render({"x": {"y": ["q"]}}) == "A Q {b}"
    assert render("{channel.A.B}", {"channel.A.B": "v"}) == "v"
    assert render("{r.missing.deeper}", {"r": {"n": 1}}) == ""
    assert render("{r.flag} {r.n}", {"r": {"flag": True, "n": 2.5}}) == "true 2.5"
    assert render("{x}", {"x": None}) == ""
    for bad, problem in [
        ("{x", "unbalanced braces: '{' without '}'"),
        ("x}", "unbalanced braces: '}' without '{'"),
        ("{}", "empty placeholder"),
        ("{x|shout}", "unknown template filter 'shout' (expected one of digits, lower, upper)"),
        ("{a b}", "bad variable name 'a b'"),
    ]:
        with pytest.raises(TemplateError, match=re.escape(problem)):
            parse_template(bad)


def test_render_value_templates_strings_recursively() -> None:
    body = {"acct": "{a}", "list": ["{a|digits}", 3, None], "n": True}
    assert render_value(body, {"a": "12"}) == {"acct": "12", "list": ["1 2", 3, None], "n": True}


def test_a_lone_surrogate_in_a_value_renders_as_the_replacement_character() -> None:
    # What json.loads makes of '"Ann \\ud800 Lee"' (half a surrogate pair, escaped in JSON).
    answer = json.loads(
        '{"name": "Ann \\ud800 Lee", "tags": ["\\udfff"], "pair": "\\ud83d\\ude00"}'
    )
    variables = {"who": answer}
    rendered = render("Hello {who.name|upper}, {who.tags} {who.pair}.", variables)
    assert rendered == 'Hello ANN \ufffd LEE, ["\ufffd"] \U0001f600.'
    rendered.encode("utf-8")  # strict: what espeak, files and log streams need
    assert render_value({"n": "{who.name}"}, variables) == {"n": "Ann \ufffd Lee"}
    assert well_formed("a\ud800b\udc00") == "a\ufffdb\ufffd" and well_formed("ok") == "ok"


@pytest.mark.parametrize(
    ("text", "head"),
    [
        ("You said {code|digits}.", "You said"),
        ("{name}, hello", ""),
        ("Parcel{n}", ""),  # not whole words: no head
        ("Done. Your parcel will be delivered on {day}.", "Done. Your parcel will be delivered on"),
        ("Hello.", ""),
    ],
)
def test_a_templates_head_is_its_fixed_words_before_the_first_placeholder(
    text: str, head: str
) -> None:
    assert parse_template(text).head == head
