"""Recorded prompts in a script's say: found, checked and named with file:line at load."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from tests.support.dialog_scripts import write
from voicebot.dialog.model import RecordedPrompt
from voicebot.dialog.parser import load_script
from voicebot.errors import ScriptError


def test_say_mixes_texts_and_recorded_prompts(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    (tmp_path / "greetings").mkdir()
    sounds.mkdir()
    for file in (tmp_path / "greetings" / "welcome.wav", sounds / "hello-world.wav"):
        with wave.open(str(file), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(b"\0\0" * 800)
    script = write(
        tmp_path,
        """start: a
states:
  a:
    say: [{audio: greetings/welcome.wav}, "Say balance.", {sound: hello-world}]
    hangup: true
""",
    )
    say = load_script(script, sound_dirs=[tmp_path / "none", sounds]).states["a"].say
    assert say == (
        RecordedPrompt("audio", "greetings/welcome.wav", str(tmp_path / "greetings/welcome.wav")),
        "Say balance.",
        RecordedPrompt("sound", "hello-world", str(sounds / "hello-world.wav")),
    )


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ("{audio: missing.wav}", "states.a.say.0.audio: 'missing.wav': no such file"),
        ("{audio: notes.txt}", "states.a.say.0.audio: 'notes.txt': not a PCM WAV file"),
        ("{sound: no-such-sound}", "states.a.say.0.sound: no sound 'no-such-sound'"),
        ("{sound: ../etc/passwd}", "states.a.say.0.sound: bad sound name '../etc/passwd'"),
        ("{audio: a.wav, sound: b}", "states.a.say.0: a recorded prompt is {audio: FILE}"),
        ("{video: a.mp4}", "states.a.say.0.video: unknown key 'video'"),
    ],
)
def test_a_recorded_prompt_that_cannot_play_is_a_check_error(
    tmp_path: Path, item: str, problem: str
) -> None:
    (tmp_path / "notes.txt").write_text("not audio")
    script = write(tmp_path, f"start: a\nstates:\n  a:\n    say: [{item}]\n    hangup: true\n")
    with pytest.raises(ScriptError) as info:
        load_script(script, sound_dirs=[tmp_path])
    assert f"s.yaml:4: {problem}" in str(info.value).replace(str(tmp_path) + "/", "")
