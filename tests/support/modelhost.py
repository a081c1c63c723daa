"""A local stand-in for alphacephei.com and huggingface.co, and fake model files, for the
``voicebot models`` tests: downloads go to an in-process HTTP server (through the mirror
setting), never to the internet.

    with serving_files() as host:
        host.files["model.zip"] = vosk_zip("model")
        run_fetch(..., mirror=host.url)
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


@dataclass
class FakeHost:
    """Serves ``files`` at ``/NAME``; ``status`` forces an error; ``redirect`` answers 302 first
    (as huggingface.co's resolve/ URLs do)."""

    files: dict[str, bytes] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    redirect: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append(request.path)
        if name in self.status:
            return web.Response(status=self.status[name], text="nope")
        if name in self.redirect and not request.path.startswith("/cdn/"):
            raise web.HTTPFound(f"/cdn/{name}")
        if name not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[name], content_type="application/octet-stream")


@contextmanager
def serving_files() -> Iterator[FakeHost]:
    """An aiohttp server on 127.0.0.1:0 in its own thread (the CLI runs its own event loop)."""
    fake = FakeHost()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/{name}", fake.handle)
    app.router.add_get("/cdn/{name}", fake.handle)
    runner = web.AppRunner(app)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        fake.port = runner.addresses[0][1]
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def vosk_zip(top: str, *, with_am: bool = True, extra: dict[str, bytes] | None = None) -> bytes:
    """A Vosk-like model zip: one top folder with am/, conf/, graph/, ivector/ (stored, so the
    download is big enough for several progress lines)."""
    rng = random.Random(4)
    files = {
        "conf/model.conf": b"--min-active=200\n",
        "conf/mfcc.conf": b"--use-energy=false\n",
        "graph/HCLr.fst": b"fst",
        "graph/Gr.fst": b"fst",
        "graph/disambig_tid.int": b"1\n",
        "graph/phones/word_boundary.int": b"1 nonword\n",
        "ivector/final.ie": b"ie",
        "README": b"fake model for tests\n",
    }
    if with_am:
        files["am/final.mdl"] = rng.randbytes(400_000)
    files.update(extra or {})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{top}/", b"")
        for name, data in files.items():
            zf.writestr(f"{top}/{name}", data)
    return buffer.getvalue()


FAKE_ONNX = b"\x08\x07" + bytes(range(256)) * 200
FAKE_SIDECAR = json.dumps({"audio": {"sample_rate": 22050}, "espeak": {"voice": "de"}}).encode()


def leftovers(models: Path) -> list[Path]:
    """What a fetch must never leave behind: its work directories and partial downloads."""
    return list(models.glob(".fetch-*")) + list(models.rglob("*.part"))
