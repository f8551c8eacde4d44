"""Raw and streamed audio within limits: any channel count the API accepts, and the duration cap counted
as samples are produced, so a long or low-rate input is refused before it is converted, not after; a file
cut into more packets per second of audio than any recording is refused after a few thousand of them."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable, Iterator

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.media import (
    UPLOAD_FORMATS,
    AudioFormat,
    CountingReader,
    encode_audio,
    one_sample_blocks_adpcm_wav,
    one_sample_packets,
    one_sample_packets_caf,
    pcm_wav,
)
from whisper_api.audio import (
    SAMPLE_RATE,
    AudioError,
    AudioTooLong,
    EmptyAudio,
    UndecodableAudio,
    decode_audio,
)
from whisper_api.audio.decode import MAX_PACKETS_PER_SECOND
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


Craft = Callable[[np.ndarray, int], bytes]
#: Files whose audio comes a sample at a time: as packets of a container, or as ADPCM blocks within packets.
ONE_SAMPLE_PIECES = [
    pytest.param(lambda samples, rate: one_sample_packets("matroska", samples, rate), id="matroska"),
    pytest.param(lambda samples, rate: one_sample_packets("nut", samples, rate), id="nut"),
    pytest.param(one_sample_packets_caf, id="caf-packet-table"),
    pytest.param(one_sample_blocks_adpcm_wav, id="adpcm-wav-4-byte-blocks"),
]


@pytest.mark.parametrize("craft", ONE_SAMPLE_PIECES)
def test_audio_in_one_sample_pieces_is_refused_as_damaged_or_crafted(craft: Craft) -> None:
    with pytest.raises(UndecodableAudio, match=r"packets per second.*damaged or crafted"):
        decode_audio(craft(tone(5, 8_000), 8_000))


@pytest.mark.parametrize("craft", [ONE_SAMPLE_PIECES[0], ONE_SAMPLE_PIECES[-1]])
def test_audio_in_one_sample_pieces_is_refused_before_most_of_it_is_read(craft: Craft) -> None:
    upload = CountingReader(craft(tone(10, 8_000), 8_000))

    with pytest.raises(UndecodableAudio):
        decode_audio(upload)

    # 80,000 pieces; refused after about 4,300 of them and the reads that buffered them.
    assert upload.bytes_read < 0.2 * len(upload.getvalue())


def test_a_live_container_stream_in_one_sample_packets_is_refused() -> None:
    stream = ContainerStream()
    with pytest.raises(UndecodableAudio, match="packets per second"):
        for piece in pieces(one_sample_packets("matroska", tone(5, 8_000), 8_000), 4096):
            stream.push(piece)
        stream.finish()


#: Real encoders, most at their finest packets: (format, the rates it takes).
RECORDINGS = [
    *((spec, st.just(spec.rate)) for spec in UPLOAD_FORMATS.values()),
    # QuickTime IMA ADPCM (AIFF-C, CAF, MOV): 64 samples a packet, the most packets per second at high rates.
    (AudioFormat("caf", "adpcm_ima_qt"), st.integers(8_000, 96_000)),
    (AudioFormat("aiff", "adpcm_ima_qt"), st.integers(8_000, 48_000)),
    # PCM recorded from RTP: 1 ms (AES67) and 10 ms (telephony) packets.
    (AudioFormat("matroska", "pcm_s16le", frame_seconds=0.001), st.integers(8_000, 192_000)),
    (AudioFormat("nut", "pcm_mulaw", frame_seconds=0.01), st.just(8_000)),
    # Opus at its shortest frames, 2.5 ms.
    (AudioFormat("ogg", "libopus", options={"frame_duration": "2.5"}), st.just(48_000)),
    (AudioFormat("adts", "aac"), st.sampled_from([8_000, 16_000, 44_100, 48_000, 96_000])),
]


@st.composite
def recordings(draw: st.DrawFn) -> tuple[AudioFormat, float]:
    spec, rates = draw(st.sampled_from(RECORDINGS))
    layout = draw(st.sampled_from(["mono", "stereo"]))
    seconds = draw(st.floats(0.2, 3))
    spec = AudioFormat(
        spec.container,
        spec.codec,
        draw(rates),
        layout,
        options=spec.options,
        frame_seconds=spec.frame_seconds,
    )
    return spec, seconds


def packets_and_seconds(data: bytes) -> tuple[int, float]:
    """The audio's packets and the seconds its frames hold, read by PyAV alone."""
    packets, seconds = 0, 0.0
    with av.open(io.BytesIO(data), mode="r") as container:
        for packet in container.demux(container.streams.audio[0]):
            packets += packet.size > 0
            seconds += sum(frame.samples / frame.sample_rate for frame in packet.decode())
    return packets, seconds


@settings(max_examples=20, deadline=None)
@given(recording=recordings())
def test_real_recordings_decode_and_are_well_within_the_packet_bound(
    recording: tuple[AudioFormat, float],
) -> None:
    spec, seconds = recording
    encoded = encode_audio(tone(seconds, SAMPLE_RATE)[None], SAMPLE_RATE, spec)

    decoded = decode_audio(encoded)

    packets, decoded_seconds = packets_and_seconds(encoded)
    assert abs(len(decoded) / SAMPLE_RATE - decoded_seconds) < FEW_MILLISECONDS
    assert packets / decoded_seconds < MAX_PACKETS_PER_SECOND / 2
