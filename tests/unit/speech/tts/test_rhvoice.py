"""RHVoice: the real engine (streaming, barge-in, cache fingerprint, errors) and the pure parts
of scripts/fetch-rhvoice.py (pins, voice pruning, the private apt configuration)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import sys
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from voicebot.errors import ModelError
from voicebot.speech.tts.cache import CachedTts
from voicebot.speech.tts.rhvoice import (
    DEFAULT_ROOT,
    LGPL_VOICES,
    MANIFEST_NAME,
    RhvoiceTts,
    check_voice,
    resolve_root,
    synthesize_to_wav,
    trim_trailing_silence,
)

ROOT = Path(__file__).resolve().parents[4]
INSTALLED = (resolve_root(DEFAULT_ROOT) / MANIFEST_NAME).is_file()
needs_rhvoice = pytest.mark.skipif(
    not INSTALLED,
    reason="RHVoice is not installed in .state/rhvoice/root: "
    "run .venv/bin/python scripts/fetch-rhvoice.py (make test does)",
)
GREETING = "Здравствуйте! Вы позвонили в службу поддержки."
FOUR_SENTENCES = (
    "Здравствуйте. Вы позвонили в службу поддержки. Скажите номер заказа. Спасибо за звонок."
)


@pytest.fixture
async def irina() -> AsyncIterator[RhvoiceTts]:
    tts = RhvoiceTts(DEFAULT_ROOT, "Irina")
    await tts.load()
    yield tts
    await tts.close()


def pcm_files(cache_dir: Path) -> int:
    return len(list(cache_dir.glob("*.pcm")))


def loud(audio: np.ndarray) -> bool:
    return bool(np.abs(audio.astype(np.int32)).max() > 3000)


# --- the real engine ----------------------------------------------------------------------------


@pytest.mark.slow
@needs_rhvoice
async def test_synthesizes_russian_at_16_khz(irina: RhvoiceTts) -> None:
    assert irina.sample_rate == 16000
    assert (irina.name, irina.voice, irina.version) == ("rhvoice", "Irina", "1.8.0")
    assert irina.status() == {"loaded": True, "workers_alive": True, "queued": 0}
    audio = await irina.synthesize(GREETING)
    assert audio.dtype == np.int16 and audio.ndim == 1
    assert loud(audio)
    assert 2.0 < len(audio) / 16000 < 6.0
    # Digits are read by RHVoice itself: "4215" is several words long, not silence.
    assert len(await irina.synthesize("4215.")) / 16000 > 1.0


@pytest.mark.slow
@needs_rhvoice
async def test_streams_the_first_sentence_before_the_last_is_synthesized(
    irina: RhvoiceTts,
) -> None:
    started = time.perf_counter()
    done_at_first_chunk = -1
    chunks: list[np.ndarray] = []
    async for chunk in irina.stream(FOUR_SENTENCES):
        if not chunks:
            done_at_first_chunk = irina.sentences_synthesized
            first_chunk_s = time.perf_counter() - started
        chunks.append(chunk)
    total_s = time.perf_counter() - started
    assert len(chunks) == 4
    # Sentence 4 is handed to the worker only once sentence 2 is asked for.
    assert 1 <= done_at_first_chunk <= 2
    assert irina.sentences_synthesized == 4
    assert first_chunk_s < total_s
    assert all(loud(chunk) for chunk in chunks)


@pytest.mark.slow
@needs_rhvoice
async def test_sentences_pause_between_them_but_the_last_ends_at_its_voice(
    irina: RhvoiceTts,
) -> None:
    first, last = [chunk async for chunk in irina.stream("Да. Нет.")]

    def silent_tail_s(audio: np.ndarray) -> float:
        trimmed = trim_trailing_silence(audio, 16000, keep_s=0.0)
        return (len(audio) - len(trimmed)) / 16000

    assert silent_tail_s(first) > 0.12  # RHVoice's own pause after a sentence
    assert silent_tail_s(last) <= 0.07


@pytest.mark.slow
@needs_rhvoice
async def test_closing_the_stream_early_stops_synthesis(irina: RhvoiceTts) -> None:
    text = " ".join(f"Это предложение номер {n} длинного объявления." for n in range(10))
    async with contextlib.aclosing(irina.stream(text)) as stream:
        async for _chunk in stream:
            break  # the caller barged in during the first sentence
    await asyncio.sleep(0.3)  # time for leaked work to show up
    # The first, perhaps the one in the worker thread; never the rest.
    assert irina.sentences_synthesized <= 2
    assert irina.sentences_synthesized + irina.sentences_stopped <= 2
    await asyncio.sleep(0.3)
    assert irina.sentences_synthesized <= 2
    assert irina.status()["queued"] == 0
    # The engine is still usable after a barge-in.
    assert loud(await irina.synthesize("Хорошо."))


@pytest.mark.slow
@needs_rhvoice
async def test_a_barge_in_stops_the_sentence_in_progress(irina: RhvoiceTts) -> None:
    # The second sentence takes RHVoice ~0.2 s here (7 s of audio); the stream is closed
    # 30 ms after the first is out, while the second is being synthesized.
    long = "Мы работаем с понедельника по пятницу с девяти утра до восьми вечера, " * 2
    async with contextlib.aclosing(irina.stream("Да. " + long[:118] + ".")) as stream:
        async for _chunk in stream:
            await asyncio.sleep(0.03)
            break
    for _ in range(50):
        if irina.sentences_stopped:
            break
        await asyncio.sleep(0.01)
    assert (irina.sentences_synthesized, irina.sentences_stopped) == (1, 1)


@pytest.mark.slow
@needs_rhvoice
async def test_voices_have_their_own_cache_fingerprint(irina: RhvoiceTts, tmp_path: Path) -> None:
    anna = RhvoiceTts(DEFAULT_ROOT, "anna")
    await anna.load()
    try:
        assert anna.voice == "Anna"
        assert irina.cache_fingerprint and anna.cache_fingerprint
        assert irina.cache_fingerprint != anna.cache_fingerprint
    finally:
        await anna.close()
    assert anna.cache_fingerprint == ""

    # CachedTts keeps fixed prompts on disk for this engine, as it does for Piper's.
    cached = CachedTts(irina, cache_dir=tmp_path)
    await cached.warm([GREETING])
    assert pcm_files(tmp_path) == 1
    again = CachedTts(irina, cache_dir=tmp_path)
    again.mark_fixed([GREETING])
    before = irina.sentences_synthesized
    assert loud(await again.synthesize(GREETING))
    assert (again.disk_hits, irina.sentences_synthesized) == (1, before)


@pytest.mark.slow
@needs_rhvoice
async def test_close_frees_the_engine_and_a_closed_engine_refuses_to_speak() -> None:
    tts = RhvoiceTts(DEFAULT_ROOT, "Elena")
    await tts.load()
    await tts.close()
    assert tts.status() == {"loaded": False, "workers_alive": False, "queued": 0}
    with pytest.raises(RuntimeError, match="not loaded"):
        async for _chunk in tts.stream("Да."):
            pass
    await tts.load()  # and it can be loaded again
    assert loud(await tts.synthesize("Да."))
    await tts.close()


@pytest.mark.slow
@needs_rhvoice
async def test_caller_audio_in_another_voice_to_a_wav(tmp_path: Path) -> None:
    out = tmp_path / "caller.wav"
    seconds = await synthesize_to_wav("Соедините с отделом продаж.", out, "Aleksandr", 8000)
    with wave.open(str(out), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        audio = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert len(audio) / 8000 == pytest.approx(seconds)
    assert 1.0 < seconds < 4.0 and loud(audio)


# --- errors, without the engine -----------------------------------------------------------------


def test_only_the_lgpl_voices_are_accepted() -> None:
    assert check_voice(" aleksandr ") == "Aleksandr"
    assert [check_voice(v.upper()) for v in LGPL_VOICES] == list(LGPL_VOICES)
    for other in ("Arina", "Aleksandr-hq", "Pavel", ""):
        with pytest.raises(ModelError, match="use one of Aleksandr, Anna, Elena, Irina"):
            RhvoiceTts(DEFAULT_ROOT, other)


async def test_missing_install_names_the_fetch_command(tmp_path: Path) -> None:
    tts = RhvoiceTts(tmp_path / "nowhere", "Irina")
    with pytest.raises(ModelError, match=r"not installed in .*nowhere.*scripts/fetch-rhvoice\.py"):
        await tts.load()
    assert tts.status()["loaded"] is False


async def test_incomplete_install_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"voices": ["Anna"]}))
    with pytest.raises(ModelError, match=r"voice Irina is not installed .*it has Anna"):
        await RhvoiceTts(tmp_path, "Irina").load()
    with pytest.raises(ModelError, match=r"libsonic\.so\.0 is missing .*fetch-rhvoice\.py"):
        await RhvoiceTts(tmp_path, "Anna").load()
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        await RhvoiceTts(tmp_path, "Anna").load()


def test_trailing_silence_is_cut_to_the_kept_tail() -> None:
    rate = 16000
    voice = (np.sin(np.arange(rate // 2) / 5) * 8000).astype(np.int16)
    audio = np.concatenate([voice, np.zeros(rate // 5, dtype=np.int16)])
    assert len(trim_trailing_silence(audio, rate, keep_s=0.06)) == len(voice) + 960
    assert len(trim_trailing_silence(voice, rate)) == len(voice)
    silence = np.zeros(rate, dtype=np.int16)
    assert len(trim_trailing_silence(silence, rate)) == rate  # nothing to cut against


# --- scripts/fetch-rhvoice.py (no network) ------------------------------------------------------


@pytest.fixture
def fetcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fetch_rhvoice", ROOT / "scripts" / "fetch-rhvoice.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_fetch_keeps_only_the_lgpl_voices(fetcher: ModuleType) -> None:
    shipped = [
        "aleksandr", "aleksandr-hq", "anna", "arina", "artemiy", "elena", "evgeniy-rus",
        "irina", "mikhail", "pavel", "tatiana", "victoria", "vitaliy", "yuriy",
    ]  # fmt: skip
    removed = fetcher.voices_to_remove(shipped)
    assert sorted(set(shipped) - set(removed)) == ["aleksandr", "anna", "elena", "irina"]
    assert "aleksandr-hq" in removed  # CC BY-SA, a different voice despite the name
    assert fetcher.missing_voices(shipped) == []
    assert fetcher.missing_voices(["anna", "irina"]) == ["Aleksandr", "Elena"]


def test_fetch_pins_every_package_by_version_and_sha256(fetcher: ModuleType) -> None:
    names = [deb.name for deb in fetcher.DEBS]
    assert names == ["libsonic0", "librhvoice-core7", "librhvoice5", "rhvoice-russian"]
    for deb in fetcher.DEBS:
        assert len(deb.sha256) == 64 and deb.version and deb.size > 0
    assert fetcher.DEBS[3].filename == "rhvoice-russian_1.8.0+dfsg-3_all.deb"


def test_fetch_refuses_a_deb_whose_sha256_differs(fetcher: ModuleType, tmp_path: Path) -> None:
    deb = fetcher.Deb("librhvoice5", "1.8.0+dfsg-3", "amd64", 3, hashlib.sha256(b"abc").hexdigest())
    path = tmp_path / deb.filename
    path.write_bytes(b"abc")
    fetcher.verify_deb(path, deb)
    path.write_bytes(b"abd")
    got = hashlib.sha256(b"abd").hexdigest()
    with pytest.raises(fetcher.FetchError) as caught:
        fetcher.verify_deb(path, deb)
    assert str(caught.value).startswith(
        f"{deb.filename}: sha256 mismatch: pinned {deb.sha256}, got {got}; refusing to install "
        "librhvoice5 1.8.0+dfsg-3"
    )


def test_the_private_apt_config_keeps_network_settings_and_drops_hooks(
    fetcher: ModuleType, tmp_path: Path
) -> None:
    host = "\n".join(
        [
            'APT::Update::Post-Invoke-Success:: "appstreamcli refresh";',
            'DPkg::Post-Invoke:: "rm -rf /var/cache/apt/archives/*.deb";',
            'Dir::Etc::parts "apt.conf.d";',
            'Dir "/";',
            'Acquire::http::Proxy "http://proxy:3128";',
            'Acquire::IndexTargets::deb::DEP-11::MetaKey "x";',
            'APT::Sandbox::User "_apt";',
        ]
    )
    config = fetcher.apt_config(host, tmp_path, as_root=True)
    assert 'Acquire::http::Proxy "http://proxy:3128";' in config
    for dropped in ("Post-Invoke", "rm -rf", '"apt.conf.d"', 'Dir "/"', "DEP-11", '"_apt"'):
        assert dropped not in config
    assert f'Dir::Etc::parts "{tmp_path / "apt.conf.d"}";' in config
    assert f'Dir::State::status "{tmp_path / "status"}";' in config
    assert 'Dir::Etc::sourceparts "-";' in config
    assert 'APT::Sandbox::User "root";' in config
    assert "Sandbox" not in fetcher.apt_config(host, tmp_path, as_root=False)
    assert fetcher.sources_list() == (
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://deb.debian.org/debian bookworm main non-free\n"
    )


def test_a_failing_apt_is_reported_in_one_line_and_installs_nothing(
    fetcher: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not fetcher.KEYRING.is_file():
        pytest.skip("needs Debian's archive keyring")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "Err:1 http://deb.debian.org/debian bookworm InRelease"\n'
        'echo "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  '
        "Temporary failure resolving 'deb.debian.org'\" >&2\n"
        "exit 100\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    state = tmp_path / "state"

    assert fetcher.main(["--state", str(state)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error: apt-get update from http://deb.debian.org/debian failed (exit 100)" in err
    assert "Temporary failure resolving 'deb.debian.org'" in err
    assert "is http://deb.debian.org/debian reachable?" in err and "--debs DIR" in err
    assert not (state / "root").exists()


def test_fetch_refuses_tampered_debs_and_installs_nothing(
    fetcher: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    debs = tmp_path / "debs"
    debs.mkdir()
    for deb in fetcher.DEBS:
        (debs / deb.filename).write_bytes(b"not a package")
    state = tmp_path / "state"
    assert fetcher.main(["--state", str(state), "--debs", str(debs)]) == 1
    err = capsys.readouterr().err
    assert "libsonic0_0.2.0-12_amd64.deb: sha256 mismatch: pinned 9d60de69" in err
    assert not (state / "root").exists() and not (state / "root.new").exists()


def fake_install(fetcher: ModuleType, root: Path) -> None:
    """A root the pinned manifest describes (two files), without the 107 MB of packages."""
    voices = root / "usr" / "share" / "RHVoice" / "voices"
    for voice in LGPL_VOICES:
        (voices / voice.lower()).mkdir(parents=True)
        (voices / voice.lower() / "voice.info").write_text(f"name={voice}\n")
    files = {}
    for voice in LGPL_VOICES:
        relative = f"usr/share/RHVoice/voices/{voice.lower()}/voice.info"
        data = (root / relative).read_bytes()
        files[relative] = [len(data), hashlib.sha256(data).hexdigest()]
    manifest = {
        "format": fetcher.MANIFEST_FORMAT,
        "packages": fetcher.pinned_packages(),
        "voices": list(LGPL_VOICES),
        "files": files,
    }
    (root / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_fetch_is_idempotent_and_check_finds_tampering(
    fetcher: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state"
    fake_install(fetcher, state / "root")

    def no_apt(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("must not run apt or dpkg")

    monkeypatch.setattr(fetcher.subprocess, "run", no_apt)
    assert fetcher.main(["--state", str(state)]) == 0
    assert "is already installed" in capsys.readouterr().out
    assert fetcher.main(["--state", str(state), "--check"]) == 0
    assert "every file matches its sha256" in capsys.readouterr().out

    # Same size, other bytes: only --check, which hashes, sees it.
    (state / "root/usr/share/RHVoice/voices/anna/voice.info").write_text("name=Anne\n")
    assert fetcher.main(["--state", str(state), "--check"]) == 1
    assert "voices/anna/voice.info: sha256 differs" in capsys.readouterr().err

    # A voice that may not be used, put back by hand.
    other = tmp_path / "other"
    fake_install(fetcher, other / "root")
    (other / "root/usr/share/RHVoice/voices/pavel").mkdir()
    assert fetcher.main(["--state", str(other), "--check"]) == 1
    assert "must not be installed are present: pavel" in capsys.readouterr().err

    assert fetcher.main(["--state", str(tmp_path / "empty"), "--check"]) == 1
    assert f"no readable {MANIFEST_NAME}" in capsys.readouterr().err


def test_a_manifest_for_other_pins_is_not_the_install(fetcher: ModuleType) -> None:
    manifest = {
        "format": fetcher.MANIFEST_FORMAT,
        "packages": fetcher.pinned_packages(),
        "voices": list(LGPL_VOICES),
        "files": {"a": [1, "x"]},
    }
    assert fetcher.manifest_problems(manifest) == []
    older = dict(manifest, packages=[dict(p, version="1.6.0") for p in manifest["packages"]])
    assert fetcher.manifest_problems(older) == ["installed packages differ from the pinned ones"]
    more = dict(manifest, voices=[*LGPL_VOICES, "Pavel"])
    assert "voices" in fetcher.manifest_problems(more)[0]
    assert fetcher.manifest_problems([]) == ["the manifest is not a JSON object"]
