"""Raw and streamed audio within limits: any channel count the API accepts, and the duration cap counted
as samples are produced, so a long or low-rate input is refused before it is converted, not after."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.media import pcm_wav
from whisper_api.audio import SAMPLE_RATE, AudioError, AudioTooLong, EmptyAudio
from whisper_api.audio.stream import (
    RAW_ENCODINGS,
    RAW_MAX_CHANNELS,
    RAW_SAMPLE_RATES,
    ContainerStream,
    PcmStream,
    RawFormat,
    decode_raw,
)

WIDTHS = {"linear16": 2, "linear24": 3, "linear32": 4, "mulaw": 1, "alaw": 1, "unsigned8": 1}
#: What the resampler may trim off the end of a stream (less than one millisecond for long ones).
FEW_MILLISECONDS = 0.005


def tone(seconds: float, rate: int, frequency: float = 440.0) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * frequency * np.arange(round(seconds * rate)) / rate)


def interleaved_linear16(channels: np.ndarray) -> bytes:
    """Samples shaped (channels, n) as interleaved 16-bit PCM."""
    return (channels.T * 32767).round().astype("<i2").tobytes()


@settings(max_examples=200, deadline=None)
@given(
    encoding=st.sampled_from(RAW_ENCODINGS),
    channels=st.integers(1, RAW_MAX_CHANNELS),
    rate=st.integers(*RAW_SAMPLE_RATES),
    body=st.binary(max_size=40_000),
)
def test_any_raw_body_the_api_accepts_is_audio_or_an_audio_error(
    encoding: str, channels: int, rate: int, body: bytes
) -> None:
    raw = RawFormat(encoding, rate, channels)  # type: ignore[arg-type]  # one of RAW_ENCODINGS
    frames = len(body) // (WIDTHS[encoding] * channels)
    try:
        samples = decode_raw(body, raw)
    except AudioError as error:
        # FFmpeg's resampler holds back a few milliseconds it never lets out of a shorter input.
        assert isinstance(error, EmptyAudio) and frames < rate * FEW_MILLISECONDS
        return
    assert samples.dtype == np.float32
    assert abs(len(samples) - frames * SAMPLE_RATE / rate) <= SAMPLE_RATE * FEW_MILLISECONDS
    assert samples.min() >= -1.0 and samples.max() <= 1.0


@pytest.mark.parametrize("channels", range(1, RAW_MAX_CHANNELS + 1))
def test_every_accepted_channel_count_mixes_to_the_channels_average(channels: int) -> None:
    # Channel 0 carries a tone, the others silence: the mix is the tone divided among them all.
    signal = np.zeros((channels, SAMPLE_RATE))
    signal[0] = tone(1, SAMPLE_RATE)
    mixed = decode_raw(interleaved_linear16(signal), RawFormat("linear16", SAMPLE_RATE, channels))
    np.testing.assert_allclose(mixed, signal[0] / channels, atol=1e-4)


def body_seconds(seconds: float, rate: int = 8_000) -> bytes:
    """Mu-law silence (0xFF), one byte per sample."""
    return b"\xff" * round(seconds * rate)


def test_a_raw_stream_stops_converting_once_it_passes_its_cap() -> None:
    stream = PcmStream(RawFormat("mulaw", 8_000), max_seconds=2)
    produced = 0
    with pytest.raises(AudioTooLong):
        for chunk in stream.chunks(body_seconds(600)):
            produced += len(chunk)
    # The cap is checked after every second of input: at most one more is converted.
    assert produced <= 3 * SAMPLE_RATE


def test_a_raw_body_over_the_cap_costs_memory_bounded_by_the_cap_not_by_the_body() -> None:
    body = body_seconds(1_000)  # 8 MB at 8 kHz, 64 MB as 16 kHz float32
    tracemalloc.start()
    try:
        with pytest.raises(AudioTooLong):
            decode_raw(body, RawFormat("mulaw", 8_000), max_seconds=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ten_seconds = 10 * SAMPLE_RATE * 4
    assert peak < 4 * ten_seconds


def test_a_low_rate_body_longer_than_the_cap_is_too_long_not_empty() -> None:
    # Issue #14: 24 MiB of mu-law at 1000 Hz is 7 hours; resampled whole it came out empty, at 2.5 GB.
    with pytest.raises(AudioTooLong):
        decode_raw(bytes(24 * 2**20), RawFormat("mulaw", 1_000), max_seconds=3_600)


def test_a_raw_stream_pushed_in_pieces_is_held_to_its_cap() -> None:
    stream = PcmStream(RawFormat("linear16", SAMPLE_RATE), max_seconds=1)
    second = interleaved_linear16(tone(1, SAMPLE_RATE)[None])
    stream.push(second)
    with pytest.raises(AudioTooLong):
        stream.push(second)


def test_a_stream_that_changed_format_is_held_to_the_same_cap() -> None:
    # A realtime session switching from 24 kHz PCM to G.711 goes on with what it has already sent.
    stream = PcmStream(RawFormat("mulaw", 8_000), max_seconds=2, counted=1.5)
    stream.push(bytes(3_200))  # 0.4 s
    with pytest.raises(AudioTooLong, match="2-second"):
        stream.push(bytes(8_000))  # a second more


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))


def test_a_container_stream_is_held_to_its_cap() -> None:
    stream = ContainerStream(max_seconds=1)
    with pytest.raises(AudioTooLong):
        for piece in pieces(pcm_wav(tone(3, SAMPLE_RATE)[None], SAMPLE_RATE), 4096):
            stream.push(piece)
        stream.finish()


def test_audio_exactly_at_the_cap_is_accepted() -> None:
    second = interleaved_linear16(tone(1, SAMPLE_RATE)[None])
    assert len(decode_raw(second, RawFormat("linear16", SAMPLE_RATE), max_seconds=1)) == SAMPLE_RATE
