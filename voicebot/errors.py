"""One exception tree for the whole project.

A ``VoicebotError`` raised inside a call ends that call, never the process.
"""

from __future__ import annotations

# Process exit codes of every command: done, failed, and invalid input (a bad script, an unknown
# model name, a bad option value), so that scripts calling voicebot can tell them apart.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 2


class VoicebotError(Exception):
    """Base of every error voicebot raises on purpose."""


class ConfigError(VoicebotError):
    """The configuration file or an environment override is invalid."""


class ModelError(VoicebotError):
    """A speech model (ASR or TTS) is missing or cannot be loaded."""


class MediaError(VoicebotError):
    """RTP/audio problem: no free port, unknown codec, socket failure."""


class ScriptError(VoicebotError):
    """A dialog script is invalid. ``str()`` reads ``file:line: key.path: problem``."""

    def __init__(self, message: str, *, file: str = "", line: int = 0, key_path: str = "") -> None:
        self.file = file
        self.line = line
        self.key_path = key_path
        self.problem = message
        location = f"{file}:{line}: " if file else ""
        key = f"{key_path}: " if key_path else ""
        super().__init__(f"{location}{key}{message}")


class AriError(VoicebotError):
    """Anything that went wrong talking to Asterisk's REST interface."""


class AriConnectionError(AriError):
    """Asterisk could not be reached (refused, timed out, connection lost)."""


class AriRequestTooLargeError(AriError):
    """A request does not fit in one ARI WebSocket frame (REST over WebSocket); resending
    cannot help."""


class AriHttpError(AriError):
    """Asterisk answered a REST request with an error status."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        super().__init__(f"ARI {method} {path} failed with HTTP {status}: {message}")


class AriAuthError(AriHttpError):
    """HTTP 401: wrong ARI user or password. Retrying will not help."""


class AriNotFoundError(AriHttpError):
    """HTTP 404: the channel/bridge is gone (often a normal race at hangup)."""


class CaptureError(VoicebotError):
    """A packet capture cannot be read or replayed (no caller stream, unknown audio format)."""


class OutboundError(VoicebotError):
    """A campaign cannot be created or changed: a bad option, an unknown campaign, a store
    that cannot be opened."""


class ContactsError(OutboundError):
    """A contact list cannot be read at all (no ``number`` column, not a CSV file). Problems
    of single lines are reported per line instead, and the good lines kept."""
