"""The command line as a newcomer meets it: help that fits each command, and progress on a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import TRAINED_MODEL
from tests.support.spoken import spoken_clips
from training.sentences import words


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whisper_api", *args], capture_output=True, text=True, timeout=120
    )


def help_of(*command: str) -> str:
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("server_flag", ["--port", "--max-queue", "--api-keys", "--database-url"])
def test_transcribe_help_lists_no_server_settings(server_flag: str) -> None:
    assert server_flag not in help_of("transcribe")


@pytest.mark.parametrize("command", [("keys", "create"), ("models", "list"), ("models", "pull")])
def test_commands_without_a_server_list_no_server_settings(command: tuple[str, ...]) -> None:
    assert "--max-queue" not in help_of(*command)


def test_serve_help_still_lists_every_setting() -> None:
    text = help_of("serve")
    assert "--max-queue" in text and "--models-dir" in text and "--database-url" in text


def test_defaults_are_shown_as_they_would_be_typed() -> None:
    text = help_of("serve")
    assert "PosixPath" not in text
    assert "default models]" in text


def test_transcribe_help_explains_its_file_and_format_arguments() -> None:
    text = help_of("transcribe")
    assert "Audio or video files" in text
    assert "subtitles" in text


def test_models_list_has_a_header(tmp_path: Path) -> None:
    (tmp_path / TRAINED_MODEL.name).symlink_to(TRAINED_MODEL)
    lines = run_cli("models", "list", "--models-dir", str(tmp_path)).stdout.splitlines()
    assert lines[0].split()[0] == "MODEL" and "LANGUAGES" in lines[0]
    assert lines[1].startswith("ggml-tiny-synth")


def test_transcribe_shows_that_it_is_working_on_a_terminal(jfk_wav: Path, tmp_path: Path) -> None:
    (tmp_path / TRAINED_MODEL.name).symlink_to(TRAINED_MODEL)
    controller, terminal = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, where a progress bar draws nothing.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    command = [sys.executable, "-m", "whisper_api", "transcribe", str(jfk_wav)]
    settings = ["--models-dir", str(tmp_path), "--default-model", "tiny-synth", "--vad-model", ""]
    with subprocess.Popen([*command, *settings], stdout=subprocess.PIPE, stderr=terminal) as process:
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal's other end closed: the process is done with it
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(timeout=120) == 0
    os.close(controller)
    # A clip within one 30 s window gets an elapsed-time line, not a bar stuck at 0 %.
    assert b"jfk.wav: transcribing" in shown
    assert b" 0%|" not in shown


def test_transcribe_prints_subtitles_cut_to_the_asked_width(tmp_path: Path) -> None:
    clip = spoken_clips()["en-1"]
    (tmp_path / TRAINED_MODEL.name).symlink_to(TRAINED_MODEL)
    settings = ["--models-dir", str(tmp_path), "--default-model", "tiny-synth", "--vad-model", ""]
    shape = ["--format", "srt", "--max-line-width", "16", "--max-line-count", "1"]
    result = run_cli("transcribe", str(clip.path), *shape, *settings)
    assert result.returncode == 0, result.stderr
    lines = [line for cue in result.stdout.strip().split("\n\n") for line in cue.split("\n")[2:]]
    assert all(len(line) <= 16 for line in lines) and words(" ".join(lines)) == clip.words
    refused = run_cli("transcribe", str(clip.path), "--format", "json", "--max-line-width", "16", *settings)
    assert refused.returncode != 0 and "srt and vtt" in refused.stderr
