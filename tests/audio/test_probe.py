"""probe_audio: how long an upload is, and whether it decodes, without decoding it to samples."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from tests.support.media import CountingReader, encode_video, pcm_wav
from whisper_api.audio import (
    AudioError,
    AudioTooLong,
    EmptyAudio,
    NoAudioStream,
    UndecodableAudio,
    decode_audio,
    probe_audio,
)

RATE = 8_000


def silent_wav(seconds: int) -> bytes:
    return pcm_wav(np.zeros((1, seconds * RATE)), RATE)


class _Unseekable(io.RawIOBase):
    """Where a live recorder writes: a muxer that cannot seek back leaves the duration out."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.data += data
        return len(data)


def silent_recording_without_duration(seconds: int) -> bytes:
    """FLAC in Matroska as a live recorder writes it, with no duration in the header."""
    sink = _Unseekable()
    with av.open(sink, mode="w", format="matroska") as output:
        stream = output.add_stream("flac", rate=RATE, layout="mono")
        for second in range(seconds):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, RATE), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, second * RATE, Fraction(1, RATE)
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return bytes(sink.data)


def test_a_file_that_states_its_length_is_measured_from_its_header() -> None:
    upload = CountingReader(silent_wav(600))
    assert probe_audio(upload) == pytest.approx(600)
    assert upload.bytes_read < 0.02 * len(upload.getvalue())


def test_a_file_stating_a_length_over_the_cap_is_refused_from_its_header() -> None:
    upload = CountingReader(silent_wav(600))
    with pytest.raises(AudioTooLong):
        probe_audio(upload, max_seconds=60)
    # decode_audio would have read (and converted) the first 60 s, a tenth of it.
    assert upload.bytes_read < 0.02 * len(upload.getvalue())


def test_a_file_without_a_stated_length_is_measured_by_counting_its_frames() -> None:
    upload = silent_recording_without_duration(40)
    with av.open(io.BytesIO(upload)) as container:
        assert container.duration is None and container.streams.audio[0].duration is None
    assert probe_audio(upload) == pytest.approx(40)


def test_counting_stops_at_the_cap() -> None:
    upload = CountingReader(silent_recording_without_duration(600))
    with pytest.raises(AudioTooLong):
        probe_audio(upload, max_seconds=10)
    assert upload.bytes_read < 0.5 * len(upload.getvalue())


@pytest.mark.parametrize(
    ("upload", "error"),
    [
        (b"", EmptyAudio),
        (b"this is not audio at all " * 200, UndecodableAudio),
        (pcm_wav(np.zeros((1, 0)), RATE), EmptyAudio),
        (encode_video("mp4", "mpeg4", seconds=1), NoAudioStream),
    ],
    ids=["nothing", "garbage", "a header without samples", "a video without sound"],
)
def test_what_cannot_be_transcribed_is_refused_as_decode_audio_refuses_it(
    upload: bytes, error: type[AudioError]
) -> None:
    with pytest.raises(error):
        decode_audio(upload)
    with pytest.raises(error):
        probe_audio(upload)
