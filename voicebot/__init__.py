"""voicebot: a fully local voice robot / smart IVR for Asterisk."""

__version__ = "0.1.0"
