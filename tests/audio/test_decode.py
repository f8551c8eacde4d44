"""decode_audio on real speech in every supported container and codec, checked by the signal it returns."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.media import (
    AudioFormat,
    CountingReader,
    best_alignment,
    encode_audio,
    encode_video,
    pcm_wav,
    pearson_at_lag,
    read_pcm_wav,
    tagged_wav,
)
from whisper_api.audio import SAMPLE_RATE, AudioTooLong, decode_audio

# Codecs add priming and padding at the edges; 60 ms is more than any of them here.
LENGTH_TOLERANCE = round(0.060 * SAMPLE_RATE)
# Encoder delay that a container does not record shifts the signal; search this far for the best alignment.
MAX_LAG = round(0.3 * SAMPLE_RATE)
LOSSLESS = 0.99
LOSSY = 0.9
CLIP_SECONDS = 5


@pytest.fixture(scope="module")
def jfk(jfk_wav: Path) -> np.ndarray:
    """The 11 s of speech in jfk.wav (16 kHz mono), read without FFmpeg."""
    samples, rate = read_pcm_wav(jfk_wav)
    assert (samples.shape[0], rate) == (1, SAMPLE_RATE)
    return samples[0]


@pytest.fixture(scope="module")
def clip(jfk: np.ndarray) -> np.ndarray:
    """A few seconds of the speech, enough to correlate while keeping encoding cheap."""
    return jfk[: CLIP_SECONDS * SAMPLE_RATE]


def assert_matches(decoded: np.ndarray, reference: np.ndarray, min_correlation: float) -> float:
    assert abs(len(decoded) - len(reference)) <= LENGTH_TOLERANCE
    _, correlation = best_alignment(decoded, reference, MAX_LAG)
    assert correlation >= min_correlation
    return correlation


def test_wav_decodes_to_its_exact_samples_as_float32_mono(jfk_wav: Path, jfk: np.ndarray) -> None:
    decoded = decode_audio(jfk_wav)

    assert decoded.dtype == np.float32
    assert decoded.shape == jfk.shape
    np.testing.assert_array_equal(decoded, jfk)


@pytest.mark.parametrize(
    "as_source",
    [
        pytest.param(str, id="str-path"),
        pytest.param(lambda path: path, id="pathlike"),
        pytest.param(lambda path: path.read_bytes(), id="bytes"),
        pytest.param(lambda path: io.BytesIO(path.read_bytes()), id="file-object"),
    ],
)
def test_every_kind_of_source_gives_the_same_samples(as_source, jfk_mp3: Path) -> None:
    expected = decode_audio(jfk_mp3)

    np.testing.assert_array_equal(decode_audio(as_source(jfk_mp3)), expected)


def test_an_open_file_is_read_from_its_current_handle(jfk_mp3: Path, jfk: np.ndarray) -> None:
    with jfk_mp3.open("rb") as file:
        assert_matches(decode_audio(file), jfk, LOSSY)


def test_the_mp3_fixture_matches_the_wav(jfk_mp3: Path, jfk: np.ndarray) -> None:
    assert assert_matches(decode_audio(jfk_mp3), jfk, LOSSY) > 0.99


FORMATS = [
    pytest.param(AudioFormat("wav", "pcm_s16le", rate=44_100), LOSSLESS, id="wav-s16-44100"),
    pytest.param(AudioFormat("wav", "pcm_s24le", rate=48_000), LOSSLESS, id="wav-s24-48000"),
    pytest.param(AudioFormat("wav", "pcm_s32le", rate=22_050), LOSSLESS, id="wav-s32-22050"),
    pytest.param(AudioFormat("wav", "pcm_f32le", rate=96_000), LOSSLESS, id="wav-f32-96000"),
    pytest.param(AudioFormat("wav", "pcm_f64le", rate=32_000), LOSSLESS, id="wav-f64-32000"),
    pytest.param(AudioFormat("wav", "pcm_u8", rate=8_000), LOSSY, id="wav-u8-8000"),
    pytest.param(AudioFormat("flac", "flac", rate=48_000), LOSSLESS, id="flac-s16-48000"),
    pytest.param(
        AudioFormat("flac", "flac", rate=96_000, sample_format="s32"), LOSSLESS, id="flac-s32-96000"
    ),
    pytest.param(AudioFormat("mp3", "libmp3lame", rate=44_100), LOSSY, id="mp3-44100"),
    pytest.param(AudioFormat("mp3", "libmp3lame", rate=8_000), LOSSY, id="mp3-8000"),
    pytest.param(AudioFormat("mp2", "mp2", rate=22_050), LOSSY, id="mpga-mp2-22050"),
    pytest.param(AudioFormat("mpeg", "mp2", rate=44_100, layout="stereo"), LOSSY, id="mpeg-mp2-44100-stereo"),
    pytest.param(AudioFormat("ipod", "aac", rate=44_100), LOSSY, id="m4a-aac-44100"),
    pytest.param(AudioFormat("mp4", "aac", rate=22_050), LOSSY, id="mp4-aac-22050"),
    pytest.param(AudioFormat("adts", "aac", rate=48_000), LOSSY, id="aac-adts-48000"),
    pytest.param(
        # This FFmpeg build has no libvorbis; its own Vorbis encoder is flagged experimental.
        AudioFormat("ogg", "vorbis", rate=44_100, layout="stereo", options={"strict": "experimental"}),
        LOSSY,
        id="ogg-vorbis-44100-stereo",
    ),
    pytest.param(AudioFormat("ogg", "libopus", rate=48_000), LOSSY, id="ogg-opus-48000"),
    pytest.param(
        AudioFormat("webm", "libopus", rate=48_000, layout="stereo"), LOSSY, id="webm-opus-48000-stereo"
    ),
]


@pytest.mark.parametrize(("spec", "min_correlation"), FORMATS)
def test_encoded_speech_decodes_to_the_same_speech(
    spec: AudioFormat, min_correlation: float, clip: np.ndarray
) -> None:
    encoded = encode_audio(clip[None], SAMPLE_RATE, spec)

    assert_matches(decode_audio(encoded), clip, min_correlation)


def test_stereo_with_a_silent_right_channel_keeps_the_speech(clip: np.ndarray) -> None:
    left_only = np.stack([clip, np.zeros_like(clip)])
    encoded = encode_audio(left_only, SAMPLE_RATE, AudioFormat("flac", "flac", layout="stereo"))

    decoded = decode_audio(encoded)

    assert_matches(decoded, clip, LOSSLESS)
    assert np.sqrt(np.mean(decoded**2)) > 0.3 * np.sqrt(np.mean(clip**2))


def test_surround_audio_is_downmixed(clip: np.ndarray) -> None:
    encoded = encode_audio(clip[None], SAMPLE_RATE, AudioFormat("wav", "pcm_s16le", layout="5.1"))

    assert_matches(decode_audio(encoded), clip, LOSSLESS)


def test_channels_ffmpeg_has_no_layout_for_are_averaged(clip: np.ndarray) -> None:
    # FFmpeg mixes unlabelled channels only in counts it knows a layout for; this was a 500 for 32 tracks.
    tracks = np.zeros((32, len(clip)))
    tracks[0] = clip

    decoded = decode_audio(pcm_wav(tracks, SAMPLE_RATE))

    assert_matches(decoded, clip, LOSSLESS)
    assert np.abs(decoded).max() == pytest.approx(np.abs(clip).max() / 32, rel=0.01)


def test_tags_that_are_not_utf8_do_not_stop_the_audio(clip: np.ndarray) -> None:
    # A WAV whose title a Windows recorder wrote in Latin-1: PyAV refused the file over the tag.
    tagged = tagged_wav(clip[None], SAMPLE_RATE, "Interview café".encode("latin-1"))

    assert_matches(decode_audio(tagged), clip, LOSSLESS)


def test_transport_streams_of_two_broadcasts_joined_decode_the_first_ones_audio(clip: np.ndarray) -> None:
    # The second capture's programme brings streams the demuxer finds only when it gets there, and PyAV
    # looked those up among the streams known at opening (an IndexError, a 500).
    first = encode_audio(clip[None], SAMPLE_RATE, AudioFormat("mpegts", "mp2", rate=SAMPLE_RATE))
    other_programme = {
        "mpegts_service_id": "2",
        "mpegts_pmt_start_pid": "0x1200",
        "mpegts_start_pid": "0x200",
    }
    spec = AudioFormat("mpegts", "mp2", rate=SAMPLE_RATE, container_options=other_programme)
    second = encode_audio(clip[None], SAMPLE_RATE, spec)

    assert_matches(decode_audio(first + second), clip, LOSSY)


@pytest.mark.parametrize(
    ("container", "video_codec", "audio_codec"),
    [
        pytest.param("mp4", "libx264", "aac", id="mp4-h264-aac"),
        pytest.param("mp4", "mpeg4", "aac", id="mp4-mpeg4-aac"),
        pytest.param("webm", "libvpx", "libopus", id="webm-vp8-opus"),
    ],
)
def test_the_audio_track_of_a_video_is_decoded(
    container: str, video_codec: str, audio_codec: str, clip: np.ndarray
) -> None:
    encoded = encode_video(
        container, video_codec, seconds=CLIP_SECONDS, audio=(clip[None], SAMPLE_RATE), audio_codec=audio_codec
    )

    assert_matches(decode_audio(encoded), clip, LOSSY)


def test_a_stream_that_reports_no_duration_is_decoded_in_full(clip: np.ndarray) -> None:
    encoded = encode_audio(clip[None], SAMPLE_RATE, AudioFormat("webm", "libopus", rate=48_000))
    with av.open(io.BytesIO(encoded)) as container:
        assert container.streams.audio[0].duration is None

    assert_matches(decode_audio(encoded), clip, LOSSY)


def test_a_stream_that_changes_rate_and_layout_midway_decodes_both_parts(clip: np.ndarray) -> None:
    half = len(clip) // 2
    first, second = clip[:half], clip[half:]
    mono_44k = encode_audio(first[None], SAMPLE_RATE, AudioFormat("mp3", "libmp3lame", rate=44_100))
    stereo_22k = encode_audio(
        np.stack([second, second]),
        SAMPLE_RATE,
        AudioFormat("mp3", "libmp3lame", rate=22_050, layout="stereo"),
    )
    joined = mono_44k + stereo_22k

    decoded = decode_audio(joined)

    # The second file's header and encoder delay sit in the middle, where no decoder trims them.
    assert abs(len(decoded) - len(clip)) <= 2 * LENGTH_TOLERANCE
    assert pearson_at_lag(decoded[: half - LENGTH_TOLERANCE], first, 0) > LOSSY
    assert best_alignment(decoded[half:], second, MAX_LAG)[1] > LOSSY


def test_a_truncated_mp3_decodes_the_part_that_arrived(jfk_mp3: Path, jfk: np.ndarray) -> None:
    data = jfk_mp3.read_bytes()

    decoded = decode_audio(data[: int(len(data) * 0.3)])

    assert 0.25 * len(jfk) < len(decoded) < 0.35 * len(jfk)
    assert pearson_at_lag(decoded, jfk, 0) > LOSSY


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(AudioFormat("ipod", "aac"), id="m4a-aac"),
        pytest.param(AudioFormat("mp3", "libmp3lame"), id="mp3"),
    ],
)
def test_damaged_packets_in_the_middle_are_skipped(spec: AudioFormat, clip: np.ndarray) -> None:
    encoded = bytearray(encode_audio(clip[None], SAMPLE_RATE, spec))
    start, end = int(len(encoded) * 0.4), int(len(encoded) * 0.5)
    encoded[start:end] = np.random.default_rng(7).integers(0, 256, end - start, dtype=np.uint8).tobytes()

    decoded = decode_audio(bytes(encoded))

    assert len(decoded) > 0.8 * len(clip)
    third = len(clip) // 3
    assert pearson_at_lag(decoded[:third], clip[:third], 0) > LOSSY
    assert best_alignment(decoded[-third:], clip[-third:], MAX_LAG)[1] > LOSSY


def test_audio_longer_than_max_seconds_is_refused(jfk_wav: Path) -> None:
    with pytest.raises(AudioTooLong):
        decode_audio(jfk_wav, max_seconds=5)


def test_audio_exactly_at_max_seconds_is_accepted(jfk_wav: Path, jfk: np.ndarray) -> None:
    assert len(decode_audio(jfk_wav, max_seconds=len(jfk) / SAMPLE_RATE)) == len(jfk)


def test_decoding_stops_at_max_seconds_instead_of_reading_the_whole_file() -> None:
    ten_minutes = io.BytesIO()
    with wave.open(ten_minutes, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8_000)
        writer.writeframes(bytes(10 * 60 * 8_000 * 2))
    upload = CountingReader(ten_minutes.getvalue())

    with pytest.raises(AudioTooLong):
        decode_audio(upload, max_seconds=1)

    assert upload.bytes_read < 0.02 * len(upload.getvalue())


@settings(max_examples=25, deadline=None)
@given(
    rate=st.integers(8_000, 48_000),
    # Up to 64 channels: FFmpeg mixes some counts itself, and the others are averaged.
    channels=st.integers(1, 64),
    seconds=st.floats(0.01, 0.5),
    frequency=st.floats(20, 4_000),
    noise=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_rate_and_channel_count_gives_the_expected_length_within_full_scale(
    rate: int, channels: int, seconds: float, frequency: float, noise: float, seed: int
) -> None:
    count = max(1, round(seconds * rate))
    tone = np.sin(2 * np.pi * frequency * np.arange(count) / rate)
    hiss = np.random.default_rng(seed).uniform(-1, 1, (channels, count))
    # Full scale on purpose: resampling such a signal overshoots, and the output must still stay in range.
    signal = (1 - noise) * tone + noise * hiss

    decoded = decode_audio(pcm_wav(signal, rate))

    assert abs(len(decoded) - count * SAMPLE_RATE / rate) <= 2
    assert decoded.min() >= -1.0
    assert decoded.max() <= 1.0


def test_float_audio_with_nan_and_infinity_decodes_to_finite_samples_in_range() -> None:
    # One NaN sample would make whisper.cpp's and Silero's whole spectrogram NaN.
    samples = np.full((1, SAMPLE_RATE), 0.1, dtype=np.float32)
    samples[0, [100, 200, 300]] = np.nan, np.inf, -np.inf
    float_wav = encode_audio(samples, SAMPLE_RATE, AudioFormat("wav", "pcm_f32le", rate=SAMPLE_RATE))
    decoded = decode_audio(float_wav)
    assert np.isfinite(decoded).all()
    assert (decoded[100], decoded[200], decoded[300]) == (0.0, 1.0, -1.0)
