"""Audio arriving in pieces decodes to the same samples as the whole file at once."""

from __future__ import annotations

import audioop  # deprecated, but still the standard library's reference G.711 codec in 3.11
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.media import AudioFormat, encode_audio, tagged_wav
from whisper_api.audio import SAMPLE_RATE, AudioTooLong, EmptyAudio, UndecodableAudio, decode_audio
from whisper_api.audio.stream import ContainerStream, PcmStream, RawFormat, decode_raw

CONTAINERS = {
    "wav": AudioFormat("wav", "pcm_s16le", rate=44_100, layout="stereo"),
    "webm": AudioFormat("webm", "libopus", rate=48_000),
    "ogg": AudioFormat("ogg", "libopus", rate=48_000),
    "mp3": AudioFormat("mp3", "libmp3lame", rate=44_100),
    "flac": AudioFormat("flac", "flac", rate=16_000),
}


@pytest.fixture(scope="module")
def speech(jfk_wav: Path) -> np.ndarray:
    return decode_audio(jfk_wav)[: 3 * SAMPLE_RATE]


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@settings(max_examples=25, deadline=None)
@given(size=st.integers(min_value=1, max_value=9000))
def test_linear16_in_any_piece_sizes_equals_the_whole(speech: np.ndarray, size: int) -> None:
    pcm = (speech * 32767).astype("<i2").tobytes()
    stream = PcmStream(RawFormat("linear16", SAMPLE_RATE))
    out = np.concatenate([*(stream.push(p) for p in pieces(pcm, size)), stream.finish()])
    np.testing.assert_allclose(out, decode_raw(pcm, RawFormat("linear16", SAMPLE_RATE)), atol=1e-6)
    np.testing.assert_allclose(out, speech, atol=1 / 16000)


def test_stereo_8_khz_linear16_is_resampled_and_mixed_to_16_khz_mono(speech: np.ndarray) -> None:
    narrow = speech[::2]
    stereo = np.stack([narrow, narrow], axis=1)
    pcm = (stereo * 32767).astype("<i2").tobytes()
    out = decode_raw(pcm, RawFormat("linear16", 8000, channels=2))
    assert abs(len(out) - 2 * len(narrow)) <= 32
    assert np.corrcoef(out[1000:20000], speech[1000:20000])[0, 1] > 0.9


@pytest.mark.parametrize("encoding", ["mulaw", "alaw"])
def test_g711_bytes_decode_like_the_reference_codec(speech: np.ndarray, encoding: str) -> None:
    linear = (speech * 32767).astype("<i2").tobytes()
    encoded = audioop.lin2ulaw(linear, 2) if encoding == "mulaw" else audioop.lin2alaw(linear, 2)
    expected = audioop.ulaw2lin(encoded, 2) if encoding == "mulaw" else audioop.alaw2lin(encoded, 2)
    out = decode_raw(encoded, RawFormat(encoding, SAMPLE_RATE))  # type: ignore[arg-type]
    np.testing.assert_allclose(out, np.frombuffer(expected, "<i2") / 32768, atol=1e-6)


def test_linear32_is_read_as_32_bit_signed(speech: np.ndarray) -> None:
    pcm = (speech.astype(np.float64) * 2**31).clip(-(2**31), 2**31 - 1).astype("<i4").tobytes()
    np.testing.assert_allclose(decode_raw(pcm, RawFormat("linear32", SAMPLE_RATE)), speech, atol=1e-6)


def test_linear24_is_read_as_24_bit_signed(speech: np.ndarray) -> None:
    values = (speech.astype(np.float64) * 2**23).round().clip(-(2**23), 2**23 - 1).astype("<i4")
    pcm = values.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()  # the low three bytes of each
    np.testing.assert_allclose(decode_raw(pcm, RawFormat("linear24", SAMPLE_RATE)), speech, atol=1e-6)


def test_unsigned8_is_read_around_128_as_wav_stores_it(speech: np.ndarray) -> None:
    pcm = (speech * 128 + 128).round().clip(0, 255).astype(np.uint8).tobytes()
    np.testing.assert_allclose(decode_raw(pcm, RawFormat("unsigned8", SAMPLE_RATE)), speech, atol=1 / 128)


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_containerised_audio_in_pieces_decodes_like_the_whole_file(speech: np.ndarray, name: str) -> None:
    data = encode_audio(speech[None], SAMPLE_RATE, CONTAINERS[name])
    stream = ContainerStream()
    out = np.concatenate([*(stream.push(p) for p in pieces(data, 3000)), stream.finish()])
    whole = decode_audio(data)
    # Without seeking, an MP3 decoder cannot trim the encoder's padding at the end: ~5 ms more.
    assert abs(len(out) - len(whole)) <= SAMPLE_RATE // 100
    np.testing.assert_allclose(out[: len(whole) - 200], whole[: len(whole) - 200], atol=1e-6)


def test_flush_returns_what_was_pushed_without_ending_the_stream(speech: np.ndarray) -> None:
    data = encode_audio(speech[None], SAMPLE_RATE, CONTAINERS["wav"])
    stream = ContainerStream()
    stream.push(data[: len(data) // 2])
    first = stream.flush()
    rest = np.concatenate([stream.push(data[len(data) // 2 :]), stream.finish()])
    assert len(first) > SAMPLE_RATE
    assert len(first) + len(rest) == pytest.approx(len(speech), abs=64)


def test_a_container_with_tags_that_are_not_utf8_is_decoded(speech: np.ndarray) -> None:
    data = tagged_wav(speech[None], SAMPLE_RATE, "Interview café".encode("latin-1"))
    stream = ContainerStream()
    out = np.concatenate([stream.push(data), stream.finish()])
    np.testing.assert_allclose(out, decode_audio(data), atol=1e-6)


def test_garbage_is_reported_as_undecodable() -> None:
    stream = ContainerStream()
    stream.push(b"this is not audio at all " * 2000)
    with pytest.raises(UndecodableAudio):
        stream.finish()


def test_a_raw_body_without_a_whole_sample_is_empty_audio() -> None:
    with pytest.raises(EmptyAudio):
        decode_raw(b"\x01", RawFormat("linear16", SAMPLE_RATE))


def test_a_raw_body_over_the_duration_cap_is_refused() -> None:
    two_seconds = bytes(4 * SAMPLE_RATE)
    with pytest.raises(AudioTooLong):
        decode_raw(two_seconds, RawFormat("linear16", SAMPLE_RATE), max_seconds=1.5)
