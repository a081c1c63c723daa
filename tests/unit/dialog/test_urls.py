"""Webhook url templates: values fill a path segment or a query value, and nothing else."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.dialog.templates import TemplateError
from voicebot.dialog.urls import UrlTemplateError, encode_value, parse_url_template, render_url

HOSTILE = "1/../../admin?delete=all#"


@pytest.mark.parametrize(
    ("source", "variables", "url"),
    [
        ("http://x", {}, "http://x"),
        ("https://bank.example/", {}, "https://bank.example/"),
        (
            "https://bank.example/customers/{id}?caller={id}",
            {"id": HOSTILE},
            "https://bank.example/customers/1%2F..%2F..%2Fadmin%3Fdelete%3Dall%23"
            "?caller=1%2F..%2F..%2Fadmin%3Fdelete%3Dall%23",
        ),
        # A value that is a whole segment's "." or ".." is encoded so it cannot climb.
        ("http://h/a/{x}/b", {"x": ".."}, "http://h/a/%2E%2E/b"),
        ("http://h/a/{x}/b", {"x": "."}, "http://h/a/%2E/b"),
        ("http://h/a/{x}{y}/b", {"x": ".", "y": "."}, "http://h/a/%2E%2E/b"),
        ("http://h/a/{x}./b", {"x": "."}, "http://h/a/%2E%2E/b"),
        ("http://h/a/{x}/b", {"x": "..."}, "http://h/a/.../b"),  # not a dot segment
        ("http://h/a/{x}/b", {"x": "%2e%2e"}, "http://h/a/%252e%252e/b"),
        ("http://h/a/{x}/b", {}, "http://h/a//b"),  # undefined: empty, as in prompts
        ("http://h/p?q={x}", {"x": "a&b=c d+e"}, "http://h/p?q=a%26b%3Dc%20d%2Be"),
        ("http://h/p?q={x}", {"x": "Zoë\n日本"}, "http://h/p?q=Zo%C3%AB%0A%E6%97%A5%E6%9C%AC"),
        ("http://h/{x|digits}", {"x": "42"}, "http://h/4%202"),
        ("http://h/{r.id}", {"r": {"id": 7}}, "http://h/7"),
        # The script's own text: kept when it is valid, encoded where it must be.
        ("http://h/a b/%20/%zz/{{x}}", {}, "http://h/a%20b/%20/%25zz/%7Bx%7D"),
        ("http://h/p?flag&k=v=w&&a=", {}, "http://h/p?flag&k=v=w&a="),
        ("http://H.Example:8080/x", {}, "http://h.example:8080/x"),
        ("http://[::1]:8080/{x}", {"x": "/"}, "http://[::1]:8080/%2F"),
    ],
)
def test_render(source: str, variables: dict[str, object], url: str) -> None:
    assert render_url(source, variables) == url


def test_the_parts_of_a_template() -> None:
    template = parse_url_template("https://api.example:8443/v1/{kind}s?id={id}&page=2")
    assert (template.scheme, template.host, template.port) == ("https", "api.example", 8443)
    assert len(template.path) == 2
    assert [pair.key for pair in template.query] == ["id", "page"]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{channel.API}/balance", "url '{channel.API}/balance' starts with a placeholder"),
        ("{x}", "starts with a placeholder '{x}'"),
        ("http{s}://h/", "placeholder '{s}' in the scheme"),
        ("https://{host}/x", "placeholder '{host}' in the host"),
        ("https://api.{env}.example/x", "placeholder '{env}' in the host"),
        ("https://h{x}", "placeholder '{x}' in the host"),
        ("https://h:{port}/x", "placeholder '{port}' in the port"),
        ("https://h/x?{key}=1", "placeholder '{key}' in the query key"),
        ("https://h/x?a=1&k{key}=1", "placeholder '{key}' in the query key"),
        ("https://h/x#{frag}", "placeholder '{frag}' in the fragment"),
        ("https://h/x?a={v}#top", "a fragment ('#…') is never sent"),
        ("ftp://h/x", "bad url 'ftp://h/x' (expected http:// or https://)"),
        ("bank.example", "bad url 'bank.example' (expected http:// or https://)"),
        ("HTTPS://h/", "expected http:// or https://"),
        ("https://user:pw@h/", "a user name or password in the url is not supported"),
        ("https://h:99999/", "bad port '99999'"),
        ("https://h:/", "bad port ''"),
        ("https:///x", "bad host ''"),
        ("https://bänk.example/", "write an international name in its xn-- form"),
    ],
)
def test_urls_a_script_may_not_use(source: str, problem: str) -> None:
    with pytest.raises(UrlTemplateError) as info:
        parse_url_template(source)
    assert problem in str(info.value)


def test_a_malformed_template_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="unbalanced braces"):
        parse_url_template("https://h/{x")


def test_encode_value_leaves_only_unreserved_characters() -> None:
    assert encode_value("AZaz09-._~") == "AZaz09-._~"
    assert encode_value("/?#[]@!$&'()*+,;=% \n") == (
        "%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%25%20%0A"
    )
    assert encode_value("\ud800") == "%3F"  # a lone surrogate never raises


# -- any value at all ------------------------------------------------------------------------

FUZZED = (
    "https://api.example:8443/customers/{a}/orders/{b}.json/x{a}y{b}z"
    "?caller={a}&slot={b}&fixed=1&both={a}-{b}"
)
values = st.text(max_size=40) | st.sampled_from(
    [".", "..", "%2e%2e", "/", "?", "#", "&", "=", "a&b=c", HOSTILE, "\n", "@evil", ":9"]
)


@settings(max_examples=400, deadline=None)
@given(a=values, b=values)
def test_no_value_changes_the_shape_of_the_request(a: str, b: str) -> None:
    url = render_url(FUZZED, {"a": a, "b": b})
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port) == ("https", "api.example", 8443)
    assert parts.username is None and parts.fragment == ""
    segments = parts.path.split("/")[1:]
    assert len(segments) == 5
    assert not {".", ".."} & set(segments)
    assert [unquote(s) for s in segments[:4]] == ["customers", a, "orders", f"{b}.json"]
    assert unquote(segments[4]) == f"x{a}y{b}z"
    pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False)
    assert pairs == [("caller", a), ("slot", b), ("fixed", "1"), ("both", f"{a}-{b}")]
