"""Webhook calls made on behalf of a dialog script (the engine only asks for them)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

# A webhook answer larger than this is not a dialog variable; refuse it rather than hold it.
MAX_RESPONSE_BYTES = 1_000_000


async def call_webhook(
    session: aiohttp.ClientSession, method: str, url: str, body: Any, timeout_s: float
) -> tuple[bool, Any]:
    """``(True, parsed JSON)`` on success, ``(False, reason)`` on any failure. Never raises."""
    try:
        async with asyncio.timeout(timeout_s):
            async with session.request(
                method, url, json=body if body is not None else None
            ) as response:
                raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
                if response.status >= 400:
                    return False, f"HTTP {response.status} from {url}"
    except TimeoutError:
        return False, f"no answer from {url} within {timeout_s:g} s"
    except aiohttp.ClientError as exc:
        return False, f"{url}: {exc.__class__.__name__}: {exc}"
    except ValueError as exc:  # e.g. an invalid URL
        return False, f"{url}: {exc}"
    if len(raw) > MAX_RESPONSE_BYTES:
        return False, f"answer from {url} larger than {MAX_RESPONSE_BYTES} bytes"
    if not raw.strip():
        return True, {}
    try:
        return True, json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False, f"answer from {url} is not JSON"
