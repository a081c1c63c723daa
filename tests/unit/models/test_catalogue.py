"""The catalogue of fetchable models: consistent entries, and where each file is fetched from."""

from __future__ import annotations

from voicebot.models.catalogue import (
    CATALOGUE,
    RemoteFile,
    find_entry,
    first_of_kind,
    source_url,
)
from voicebot.speech.discovery import base_language


def test_catalogue_is_consistent() -> None:
    names = [e.name for e in CATALOGUE]
    assert len(names) == len(set(names))
    for entry in CATALOGUE:
        assert entry.files[0].url.startswith("https://")
        if entry.kind == "vosk":
            assert entry.files[0].url == f"https://alphacephei.com/vosk/models/{entry.name}.zip"
            assert entry.files[0].sha256 is None  # alphacephei publishes none
        else:
            assert [f.filename for f in entry.files] == [
                f"{entry.name}.onnx",
                f"{entry.name}.onnx.json",
            ]
            assert entry.language == base_language(entry.name.split("-")[0])
        for file in entry.files:
            assert file.sha256 is None or len(file.sha256) == 64


def test_a_mirror_serves_every_file_by_its_name_at_its_root() -> None:
    file = RemoteFile("https://huggingface.co/rhasspy/piper-voices/resolve/main/de_DE-x.onnx", 1)
    assert file.filename == "de_DE-x.onnx"
    assert source_url(file, None) == file.url
    assert source_url(file, "") == file.url
    assert source_url(file, "http://mirror.lan/models/") == "http://mirror.lan/models/de_DE-x.onnx"


def test_lookups_by_name_and_by_kind_and_language() -> None:
    entry = find_entry("vosk-model-small-de-0.15")
    assert entry is not None and (entry.kind, entry.language) == ("vosk", "de")
    assert find_entry("vosk-model-klingon") is None
    piper_de = first_of_kind("piper", "de")
    assert piper_de is not None and piper_de.name == "de_DE-thorsten-medium"
    assert first_of_kind("piper", "es") is None
