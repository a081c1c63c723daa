"""One exception tree: every error voicebot raises on purpose is a ``VoicebotError`` (a call
ends on one, the process does not), and the exit codes tell the outcomes apart."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pytest

import voicebot
from voicebot import errors
from voicebot.errors import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_OK,
    AriAuthError,
    AriConnectionError,
    AriError,
    AriHttpError,
    AriNotFoundError,
    AriRequestTooLargeError,
    CaptureError,
    ConfigError,
    MediaError,
    ModelError,
    ScriptError,
    VoicebotError,
)


def errors_defined_in_voicebot() -> dict[str, type[BaseException]]:
    """Every exception class a voicebot module defines, by its qualified name."""
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(voicebot.__path__, "voicebot."):
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_error_voicebot_defines_is_a_voicebot_error() -> None:
    """Or a ValueError of a pure parser (a malformed template, a truncated pcap) that its
    callers turn into one, or a signal private to its module."""
    defined = errors_defined_in_voicebot()
    # The tree's own classes are found, and the tools' errors (BenchError, SipCallError…) too.
    assert "voicebot.errors.ScriptError" in defined
    assert "voicebot.tools.bench.BenchError" in defined
    assert "voicebot.tools.sip.result.SipCallError" in defined
    outside = {
        name: cls
        for name, cls in defined.items()
        if not issubclass(cls, VoicebotError) and not cls.__name__.startswith("_")
    }
    assert [name for name, cls in outside.items() if not issubclass(cls, ValueError)] == []


@pytest.mark.parametrize(
    ("error", "parent"),
    [
        (ConfigError, VoicebotError),
        (ModelError, VoicebotError),
        (MediaError, VoicebotError),
        (ScriptError, VoicebotError),
        (CaptureError, VoicebotError),
        (AriError, VoicebotError),
        (AriConnectionError, AriError),
        (AriRequestTooLargeError, AriError),
        (AriHttpError, AriError),
        (AriAuthError, AriHttpError),
        (AriNotFoundError, AriHttpError),
    ],
)
def test_the_tree(error: type[VoicebotError], parent: type[VoicebotError]) -> None:
    assert error.__bases__ == (parent,)


def test_every_class_of_the_module_is_in_the_tree() -> None:
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    ]
    assert all(issubclass(c, VoicebotError) for c in classes)
    assert VoicebotError.__bases__ == (Exception,)


def test_exit_codes_are_distinct_and_success_is_zero() -> None:
    assert EXIT_OK == 0
    assert len({EXIT_OK, EXIT_ERROR, EXIT_INVALID}) == 3


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (
            {"file": "bank.yaml", "line": 12, "key_path": "states.main.say"},
            "bank.yaml:12: states.main.say: no text",
        ),
        ({"file": "bank.yaml", "line": 3}, "bank.yaml:3: no text"),
        ({"key_path": "states.main.say"}, "states.main.say: no text"),
        ({}, "no text"),
    ],
)
def test_a_script_error_reads_file_line_key_problem(kwargs: dict[str, Any], text: str) -> None:
    error = ScriptError("no text", **kwargs)
    assert str(error) == text
    assert error.problem == "no text"
    assert (error.file, error.line, error.key_path) == (
        kwargs.get("file", ""),
        kwargs.get("line", 0),
        kwargs.get("key_path", ""),
    )


@pytest.mark.parametrize("error", [AriHttpError, AriAuthError, AriNotFoundError])
def test_an_ari_http_error_names_the_request_and_asterisks_message(
    error: type[AriHttpError],
) -> None:
    raised = error("DELETE", "/channels/1.1", 404, "Channel not found")
    assert str(raised) == "ARI DELETE /channels/1.1 failed with HTTP 404: Channel not found"
    assert (raised.method, raised.path, raised.status, raised.message) == (
        "DELETE",
        "/channels/1.1",
        404,
        "Channel not found",
    )
