"""What decode_audio says about uploads it cannot turn into audio: the right error, code and message."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.media import AudioFormat, encode_audio, encode_video, pcm_wav
from whisper_api.audio import (
    AudioError,
    AudioTooLong,
    EmptyAudio,
    NoAudioStream,
    UndecodableAudio,
    decode_audio,
)

SUPPORTED = ("flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm", "video")


def tone(seconds: float = 1.0, rate: int = 16_000) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * rate)) / rate)[None]


def undecodable(source: bytes) -> UndecodableAudio:
    with pytest.raises(UndecodableAudio) as caught:
        decode_audio(source)
    return caught.value


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (EmptyAudio(), "empty_file"),
        (NoAudioStream(), "no_audio_stream"),
        (UndecodableAudio("unrecognised or corrupt data"), "invalid_audio"),
        (AudioTooLong(30), "audio_too_long"),
    ],
)
def test_each_error_is_an_audio_error_with_its_code_and_a_sentence(error: AudioError, code: str) -> None:
    assert isinstance(error, AudioError)
    assert error.code == code
    assert error.message == str(error)
    assert error.message[0].isupper()
    assert error.message.endswith(".")


def test_empty_bytes_are_empty_audio() -> None:
    with pytest.raises(EmptyAudio):
        decode_audio(b"")


def test_an_empty_file_on_disk_is_empty_audio(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp3"
    empty.touch()

    with pytest.raises(EmptyAudio):
        decode_audio(empty)


def test_a_file_object_already_read_to_its_end_is_empty_audio() -> None:
    upload = io.BytesIO(pcm_wav(tone(), 16_000))
    upload.read()

    with pytest.raises(EmptyAudio):
        decode_audio(upload)


def test_a_wav_header_with_no_samples_is_empty_audio() -> None:
    header_only = pcm_wav(np.zeros((1, 0)), 16_000)
    assert len(header_only) == 44

    with pytest.raises(EmptyAudio):
        decode_audio(header_only)


def test_random_bytes_are_undecodable_and_the_message_lists_the_supported_formats() -> None:
    error = undecodable(np.random.default_rng(3).integers(0, 256, 4_096, dtype=np.uint8).tobytes())

    assert "could not be decoded" in error.message
    for name in SUPPORTED:
        assert name in error.message


def test_the_message_leaks_no_ffmpeg_internals() -> None:
    error = undecodable(b"this is not audio at all" * 100)

    for internal in ("Errno", "avcodec", "avformat", "Traceback", "<none>", "0x"):
        assert internal not in error.message


def test_a_wav_cut_inside_its_header_is_undecodable() -> None:
    assert "unrecognised or corrupt data" in undecodable(pcm_wav(tone(), 16_000)[:30]).message


def test_an_ogg_cut_before_its_first_page_ends_is_reported_as_truncated() -> None:
    encoded = encode_audio(tone(), 16_000, AudioFormat("ogg", "libopus", rate=48_000))

    assert "truncated" in undecodable(encoded[:30]).message


def test_a_file_whose_every_audio_packet_is_damaged_is_undecodable() -> None:
    encoded = encode_audio(tone(), 16_000, AudioFormat("ipod", "aac"))
    # The MP4 layout stays intact, so the file opens and every packet reaches the decoder.
    payload_start = encoded.index(b"mdat") + 4
    payload_end = payload_start + int.from_bytes(encoded[payload_start - 8 : payload_start - 4], "big") - 8
    noise = np.random.default_rng(5).integers(0, 256, payload_end - payload_start, dtype=np.uint8).tobytes()

    undecodable(encoded[:payload_start] + noise + encoded[payload_end:])


@settings(max_examples=20, deadline=None)
@given(rate=st.one_of(st.integers(1, 999), st.integers(768_001, 2**30)))
def test_a_sample_rate_no_audio_comes_at_is_undecodable(rate: int) -> None:
    # A header's rate a byte off made a small file a bomb: at 1.5 GHz FFmpeg's resampler took 1.7 GB and
    # held the GIL for 14 s, and at 1 Hz every sample became 16,000 before any limit was checked.
    wav = bytearray(pcm_wav(tone(0.1), 16_000))
    wav[24:32] = struct.pack("<II", rate, 2 * rate)  # the format chunk's sample rate and bytes per second

    assert f"a sample rate of {rate} Hz" in undecodable(bytes(wav)).message


def test_an_audio_stream_in_a_codec_without_a_decoder_is_undecodable() -> None:
    # A well-formed WAV whose format tag names no codec FFmpeg knows.
    pcm = bytes(3_200)
    fmt = struct.pack("<HHIIHH", 0x1234, 1, 16_000, 32_000, 2, 16)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    wav = b"RIFF" + struct.pack("<I", len(body)) + body

    assert "unsupported audio codec" in undecodable(wav).message


def test_a_video_without_an_audio_track_has_no_audio_stream() -> None:
    with pytest.raises(NoAudioStream):
        decode_audio(encode_video("mp4", "libx264", seconds=1))


def test_too_long_audio_states_the_limit() -> None:
    with pytest.raises(AudioTooLong) as caught:
        decode_audio(pcm_wav(tone(seconds=2), 16_000), max_seconds=1.5)

    assert "1.5-second limit" in caught.value.message


def test_a_missing_path_is_a_caller_error_not_a_bad_upload(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        decode_audio(tmp_path / "missing.wav")


def test_a_bytes_source_is_not_taken_for_a_path() -> None:
    name_of_an_existing_file = os.fsencode(__file__)

    undecodable(name_of_an_existing_file)
