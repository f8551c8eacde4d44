"""Turn an uploaded audio or video file into the samples whisper.cpp consumes: 16 kHz mono float32."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import BinaryIO

import av
import av.logging
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer

from whisper_api.errors import InvalidInput

SAMPLE_RATE = 16_000

_SUPPORTED_FORMATS = "flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm, or a video file with an audio track"

#: Sample rates audio is recorded at: from below telephony's 8 kHz (old 4 and 5.5 kHz files) to 768 kHz,
#: the highest an interface records at. Outside them a rate is damage or a trap, and costly: FFmpeg's
#: resampler builds a filter as long as the rate's ratio to 16 kHz (a 380 KB file at 1.5 GHz took 1.7 GB
#: and held the GIL for 14 s), and at 1 Hz each sample of a frame becomes 16,000 before any limit is checked.
SAMPLE_RATES = (1_000, 768_000)

#: Packets (and frames) per second of audio beyond which a file is refused as damaged or crafted. Each costs
#: PyAV about 4 microseconds of Python-level work however little audio it carries, so a file of one-sample
#: packets (16,000 a second at 16 kHz) costs 70 ms of a core per second of audio, where an MP3 costs 1 ms.
#: Recordings come in far fewer: AAC 8-94, MP3 14-42, Opus 50 (400 at its smallest, 2.5 ms, frames), IMA
#: ADPCM in AIFF/CAF/MOV 689 at 44.1 kHz (1,500 at 96 kHz), PCM captured from 1 ms RTP packets (AES67)
#: 1,000; every packet of one sample at 8 kHz or more is past it. At this many, decoding stays under 2% of
#: a core per second of audio, less than transcribing that second costs.
MAX_PACKETS_PER_SECOND = 4_000

#: Decoded frames are resampled this many seconds at a time (or as they come, when larger): FFmpeg's
#: resampler costs as much per call as a frame's worth of decoding, however small the frame, and a live
#: stream waits no longer than this for its samples.
RESAMPLE_SECONDS = 0.01

#: How tags that are not UTF-8 are read. Nothing here reads tags, but PyAV decodes all of them on opening a
#: container and, strictly, refuses the file over one: a WAV titled in Latin-1 by a Windows recorder.
METADATA_ERRORS = "replace"

# FFmpeg logs every damaged frame of an upload, and this module already handles those. The no-op callback is
# also PyAV's own default; setting it here keeps it so, whatever PyAV version is installed. It changes only
# FFmpeg's process-wide log callback, not Python's logging, and PyAV warns that forwarding FFmpeg's log to
# Python can deadlock in multi-threaded programs like this service.
av.logging.set_level(None)


class AudioError(InvalidInput):
    """An upload that cannot become audio for transcription; `message` is meant for the API user."""

    param = "file"
    code: str


class EmptyAudio(AudioError):
    code = "empty_file"

    def __init__(self) -> None:
        super().__init__("The uploaded file is empty: it contains no audio.")


class NoAudioStream(AudioError):
    code = "no_audio_stream"

    def __init__(self) -> None:
        super().__init__("The uploaded file has no audio track.")


class UndecodableAudio(AudioError):
    code = "invalid_audio"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The uploaded file could not be decoded as audio ({reason}). "
            f"Supported formats: {_SUPPORTED_FORMATS}."
        )


class AudioTooLong(AudioError):
    code = "audio_too_long"

    def __init__(self, max_seconds: float) -> None:
        super().__init__(f"The audio is longer than the {max_seconds:g}-second limit.")


def decode_audio(
    source: bytes | str | os.PathLike[str] | BinaryIO, *, max_seconds: float | None = None
) -> np.ndarray:
    """Decode the first audio stream of `source` into 16 kHz mono float32 samples in [-1, 1].

    Blocking and CPU-bound: call it from a worker thread. Decoding stops as soon as the output passes
    `max_seconds`, so memory stays bounded by the limit rather than by the upload.
    """
    with _binary_file(source) as file, _open_container(file) as container:
        stream = _first_audio_stream(container)
        return joined_samples(DurationCap(max_seconds).counted(resampled(decoded_frames(container, stream))))


def probe_audio(
    source: bytes | str | os.PathLike[str] | BinaryIO, *, max_seconds: float | None = None
) -> float:
    """Seconds of audio in `source`, with `decode_audio`'s errors, in constant memory and without decoding
    more than one frame when the container states its duration (then the container's word is taken for it;
    whoever decodes the audio later still holds it to the limit). Without a stated duration the frames are
    decoded and counted, not kept, and counting stops at `max_seconds`.
    """
    cap = DurationCap(max_seconds)
    with _binary_file(source) as file, _open_container(file) as container:
        stream = _first_audio_stream(container)
        frames = decoded_frames(container, stream)
        first = next(frames, None)
        if first is None:
            raise EmptyAudio
        stated = _stated_duration(container, stream)
        if stated is not None:
            cap.add(*stated)
        else:
            for frame in itertools.chain([first], frames):
                cap.add(frame.samples, frame.sample_rate)
    return cap.seconds


class DurationCap:
    """Audio counted as it is produced against a limit, so a decoder stops (AudioTooLong) at the limit instead
    of after the whole input: memory and work are bounded by the limit, not by the upload."""

    def __init__(self, max_seconds: float | None) -> None:
        self.max_seconds = max_seconds
        # In 16 kHz samples, so counting the decoders' own output is exact at the limit.
        self._samples = 0.0

    @property
    def seconds(self) -> float:
        return self._samples / SAMPLE_RATE

    def add(self, samples: float, rate: float | Fraction = SAMPLE_RATE) -> None:
        """Count `samples` at `rate` per second; AudioTooLong once the total passes the limit."""
        self._samples += float(samples * SAMPLE_RATE / rate)
        if self.max_seconds is not None and self._samples > self.max_seconds * SAMPLE_RATE:
            raise AudioTooLong(self.max_seconds)

    def counted(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """`chunks` of 16 kHz samples, each counted before the next is asked for."""
        for chunk in chunks:
            self.add(chunk.size)
            yield chunk


def joined_samples(chunks: Iterable[np.ndarray]) -> np.ndarray:
    """`chunks` of 16 kHz samples as one float32 array in [-1, 1]; EmptyAudio when they hold none."""
    pieces = [chunk for chunk in chunks if chunk.size]
    if not pieces:
        raise EmptyAudio
    return in_range(np.concatenate(pieces).astype(np.float32, copy=False))


def in_range(samples: np.ndarray) -> np.ndarray:
    """float32 `samples` made finite and kept in [-1, 1], in place.

    Lossy decoders and resamplers overshoot full scale slightly, and float PCM (WAV, raw linear32) can
    carry NaN or infinity, which would make whisper.cpp's and Silero's whole spectrogram NaN: NaN is
    heard as silence, infinity as full scale.
    """
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(samples, -1.0, 1.0, out=samples)


@contextlib.contextmanager
def _binary_file(source: bytes | str | os.PathLike[str] | BinaryIO) -> Iterator[BinaryIO]:
    # Opening paths here rather than in FFmpeg keeps a missing file an ordinary FileNotFoundError (a caller
    # bug) instead of looking like a bad upload, and lets one emptiness check serve every kind of source.
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as file:
            yield file
    else:
        yield source


@contextlib.contextmanager
def _open_container(file: BinaryIO) -> Iterator[InputContainer]:
    if _is_exhausted(file):
        raise EmptyAudio
    try:
        container = av.open(file, mode="r", metadata_errors=METADATA_ERRORS)
    except av.FFmpegError as error:
        raise UndecodableAudio(_reason(error)) from error
    with container:
        yield container


def _is_exhausted(file: BinaryIO) -> bool:
    """Whether nothing is left to read; a stream that cannot seek gets the benefit of the doubt."""
    if not file.seekable():
        return False
    position = file.tell()
    end = file.seek(0, io.SEEK_END)
    file.seek(position)
    return end <= position


def _first_audio_stream(container: InputContainer) -> AudioStream:
    if not container.streams.audio:
        raise NoAudioStream
    stream = container.streams.audio[0]
    if stream.codec_context is None:
        raise UndecodableAudio("unsupported audio codec")
    return stream


def decoded_frames(container: InputContainer, stream: AudioStream) -> Iterator[AudioFrame]:
    """Frames of `stream`, skipping packets the decoder rejects; raise if none at all decode."""
    decoded_any = False
    failure: av.FFmpegError | None = None
    packets = container.demux(stream)
    density = _Density()
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as error:
            # A damaged or truncated container ends the stream: keep the audio before the damage.
            failure = error
            break
        except IndexError:
            # PyAV's flush at the end of demuxing looks up streams the container added while it was read
            # (MPEG-TS finds them as it goes) among those known at opening: every packet has been read.
            break
        density.add_packet()
        try:
            frames = packet.decode()
        except av.FFmpegError as error:
            # One damaged packet need not lose the rest of the recording. Decoders disagree on how they say
            # "damaged" (most: invalid data; AAC: EPERM), so any decoder error counts.
            failure = error
            continue
        for frame in frames:
            _check_rate(frame.sample_rate)
            density.add_frame(frame)
            decoded_any = True
            yield frame
    if failure is not None and not decoded_any:
        raise UndecodableAudio(_reason(failure)) from failure


class _Density:
    """Packets and frames counted against the audio they carry (MAX_PACKETS_PER_SECOND), with a second's
    worth free: a decoder's first packets may carry none yet, and a short clip has little to count against.
    Checked as each arrives, so a file made of tiny pieces is refused after a few thousand of them."""

    def __init__(self) -> None:
        self._packets = 0
        self._frames = 0
        self._seconds = 0.0

    def add_packet(self) -> None:
        self._packets += 1
        self._check(self._packets)

    def add_frame(self, frame: AudioFrame) -> None:
        self._frames += 1
        self._seconds += frame.samples / frame.sample_rate
        self._check(self._frames)

    def _check(self, count: int) -> None:
        if count > MAX_PACKETS_PER_SECOND * (self._seconds + 1):
            if not self._seconds:
                # Thousands of packets and no audio: not the pieces' size but their content is the problem.
                raise UndecodableAudio("unrecognised or corrupt data")
            raise UndecodableAudio(
                f"its audio is cut into more than {MAX_PACKETS_PER_SECOND:,} packets per second, where "
                "recordings have at most about 1,500: the file is damaged or crafted"
            )


def _check_rate(rate: int) -> None:
    low, high = SAMPLE_RATES
    if not low <= rate <= high:
        raise UndecodableAudio(f"a sample rate of {rate} Hz, where audio comes at {low} to {high} Hz")


def resampled(frames: Iterator[AudioFrame]) -> Iterator[np.ndarray]:
    # A stream may change rate or layout midway (joined recordings, radio captures) and PyAV's resampler
    # is fixed to its first frame's parameters, so each run of alike frames gets its own.
    for _, alike in itertools.groupby(frames, key=_parameters):
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        batches = _batched(alike)
        first = next(batches)
        try:
            yield from _mono_samples(resampler.resample(first))
        except av.ArgumentError:
            # FFmpeg mixes down only layouts it can name, and names unlabelled channels by their count for a
            # few counts only (1-8, 10, 12, 16, 24): any other, a 32-track desk recording, is averaged here,
            # every channel alike, as raw channels are.
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            batches = map(_averaged, itertools.chain([first], batches))
        for batch in batches:
            yield from _mono_samples(resampler.resample(batch))
        yield from _mono_samples(resampler.resample(None))


def _batched(frames: Iterable[AudioFrame]) -> Iterator[AudioFrame]:
    """Alike `frames` joined into frames of at least RESAMPLE_SECONDS (the last may be shorter)."""
    fifo = av.AudioFifo()
    for frame in frames:
        # Joined frames have no timing of their own, and the FIFO would refuse any gap between them.
        frame.pts = None
        fifo.write(frame)
        if fifo.samples >= frame.sample_rate * RESAMPLE_SECONDS and (batch := fifo.read()) is not None:
            yield batch
    if (rest := fifo.read()) is not None:
        yield rest


def _stated_duration(container: InputContainer, stream: AudioStream) -> tuple[int, Fraction | int] | None:
    """The audio's length as (ticks, ticks per second) where the stream or container states it."""
    if stream.duration and stream.time_base:
        return stream.duration, 1 / stream.time_base
    if container.duration:
        return container.duration, av.time_base
    return None


def _parameters(frame: AudioFrame) -> tuple[str, str, int]:
    return frame.format.name, frame.layout.name, frame.sample_rate


def _averaged(frame: AudioFrame) -> AudioFrame:
    """`frame` as one float channel, the mean of its channels, at its own rate and time."""
    values = frame.to_ndarray()
    if not frame.format.is_planar:
        values = values.reshape(-1, frame.layout.nb_channels).T
    if values.dtype.kind in "iu":
        # Integer samples span their type's range; unsigned ones (8-bit) sit around its middle.
        full_scale = 2.0 ** (values.dtype.itemsize * 8 - 1)
        mean = (values.mean(axis=0) - (full_scale if values.dtype.kind == "u" else 0)) / full_scale
    else:
        mean = values.mean(axis=0)
    mono = AudioFrame.from_ndarray(mean.astype(np.float32)[None], format="flt", layout="mono")
    mono.sample_rate, mono.pts, mono.time_base = frame.sample_rate, frame.pts, frame.time_base
    return mono


def _mono_samples(frames: list[AudioFrame]) -> Iterator[np.ndarray]:
    for frame in frames:
        yield frame.to_ndarray()[0]


def _reason(error: av.FFmpegError) -> str:
    # FFmpeg's own wording is often misleading out of context ("operation not permitted" for a damaged AAC
    # frame), so say only what the user can act on.
    return "the file is truncated" if isinstance(error, EOFError) else "unrecognised or corrupt data"
