"""Audio that arrives in pieces (a live WebSocket stream), decoded to 16 kHz mono float32 as it comes.

Two kinds of input, as Deepgram's live API takes them: raw samples whose encoding, rate and channel
count the client names (`PcmStream`), and containerised audio (WAV, WebM/Opus, Ogg, MP3, FLAC...)
whose container says it all (`ContainerStream`). Both turn bytes into samples incrementally; neither
holds more than the undecoded remainder.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, get_args

import av
import numpy as np

from whisper_api.audio.decode import (
    METADATA_ERRORS,
    SAMPLE_RATE,
    AudioError,
    DurationCap,
    UndecodableAudio,
    decoded_frames,
    in_range,
    joined_samples,
    resampled,
)

#: Signed little-endian integers (linear16/24/32), G.711 (mulaw, alaw), and 8-bit unsigned as WAV stores it.
RawEncoding = Literal["linear16", "linear32", "mulaw", "alaw", "linear24", "unsigned8"]
RAW_ENCODINGS: tuple[str, ...] = get_args(RawEncoding)
_SAMPLE_BYTES = {"linear16": 2, "linear24": 3, "linear32": 4, "mulaw": 1, "alaw": 1, "unsigned8": 1}
#: Integer PCM samples `width` bytes wide, as WAV (and Wyoming, which follows it) lays them out.
PCM_ENCODINGS: dict[int, RawEncoding] = {1: "unsigned8", 2: "linear16", 3: "linear24", 4: "linear32"}
#: Raw audio's sample rates: from telephony's 8 kHz, where G.711 (mulaw, alaw) is defined and below which
#: speech loses its consonants (a smaller number is a mistake, such as kHz for Hz), to 192 kHz, the highest
#: rate audio interfaces record at.
RAW_SAMPLE_RATES = (8_000, 192_000)
#: Raw channels are averaged to mono, which works for any count; more than 7.1 is no recording of speech.
RAW_MAX_CHANNELS = 8
#: Bytes FFmpeg may read before it must say what the container is; small, so a live stream starts fast.
_PROBE_BYTES = "32768"


def _g711_table(encoding: Literal["mulaw", "alaw"]) -> np.ndarray:
    """The 256 linear values of G.711 mu-law or A-law bytes, as int16."""
    codes = np.arange(256, dtype=np.int32)
    if encoding == "mulaw":
        inverted = ~codes & 0xFF
        exponent, mantissa = (inverted >> 4) & 0x07, inverted & 0x0F
        magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
        values = np.where(inverted & 0x80, -magnitude, magnitude)
    else:
        toggled = codes ^ 0x55
        exponent, mantissa = (toggled >> 4) & 0x07, toggled & 0x0F
        magnitude = np.where(
            exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
        )
        values = np.where(toggled & 0x80, magnitude, -magnitude)
    return values.astype(np.int16)


@dataclass(frozen=True, slots=True)
class RawFormat:
    """What raw audio is, since it cannot say so itself."""

    encoding: RawEncoding
    sample_rate: int
    channels: int = 1


def decode_raw(data: bytes, raw: RawFormat, *, max_seconds: float | None = None) -> np.ndarray:
    """A whole body of raw audio as 16 kHz mono float32; the same errors as `decode_audio`, and like it
    this stops converting as soon as the output passes `max_seconds`."""
    stream = PcmStream(raw, max_seconds=max_seconds)
    return joined_samples([*stream.chunks(data), stream.finish()])


class PcmStream:
    """Raw samples in a named encoding, interleaved over `channels`, at `sample_rate`.

    Input is converted a second at a time, each second's output counted against `max_seconds`
    (AudioTooLong) before the next is converted: a big piece at a low rate, resampled whole, would cost
    many times its own size in memory before any limit could be checked.
    """

    def __init__(self, raw: RawFormat, *, max_seconds: float | None = None, counted: float = 0.0) -> None:
        """`counted`: seconds of the stream already held to `max_seconds` (it changed format)."""
        if raw.encoding not in RAW_ENCODINGS:
            raise ValueError(f"unknown raw encoding {raw.encoding!r}")
        if raw.sample_rate < 1 or raw.channels < 1:
            raise ValueError(f"raw audio needs a positive sample rate and channel count, got {raw}")
        self._raw = raw
        self._frame_bytes = _SAMPLE_BYTES[raw.encoding] * raw.channels
        self._block_bytes = self._frame_bytes * raw.sample_rate
        self._table = _g711_table(raw.encoding) if raw.encoding in ("mulaw", "alaw") else None
        self._pending = b""
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self._position = 0
        self._cap = DurationCap(max_seconds)
        self._cap.add(counted * SAMPLE_RATE)

    def push(self, data: bytes) -> np.ndarray:
        """The samples `data` completes (a partial frame waits for the next push)."""
        return _joined(list(self.chunks(data)))

    def chunks(self, data: bytes) -> Iterator[np.ndarray]:
        """What `push` returns, a second of input at a time, each converted only when asked for."""
        data = self._pending + data
        usable = len(data) - len(data) % self._frame_bytes
        self._pending = data[usable:]
        whole = memoryview(data)[:usable]
        blocks = (whole[start : start + self._block_bytes] for start in range(0, usable, self._block_bytes))
        yield from self._cap.counted(self._resample(self._mono(block)) for block in blocks)

    def finish(self) -> np.ndarray:
        """What the resampler still holds; the stream is over."""
        held = (frame.to_ndarray()[0] for frame in self._resampler.resample(None))
        return _joined(list(self._cap.counted(held)))

    def _mono(self, data: memoryview) -> np.ndarray:
        """Whole frames as float samples, the channels averaged: raw channels name no layout (which one is
        the centre, which the LFE), so none is weighted apart, and any number of them mixes alike."""
        if self._table is not None:
            values, scale = self._table[np.frombuffer(data, dtype=np.uint8)], 2**15
        elif self._raw.encoding == "linear16":
            values, scale = np.frombuffer(data, dtype="<i2"), 2**15
        elif self._raw.encoding == "linear24":
            # Each 3-byte sample becomes the top of an int32, which carries its sign along.
            padded = np.zeros((len(data) // 3, 4), dtype=np.uint8)
            padded[:, 1:] = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
            values, scale = padded.view("<i4").ravel(), 2**31
        elif self._raw.encoding == "unsigned8":
            values, scale = np.frombuffer(data, dtype=np.uint8).astype(np.int16) - 128, 2**7
        else:
            values, scale = np.frombuffer(data, dtype="<i4"), 2**31
        return (values.reshape(-1, self._raw.channels).mean(axis=1) / scale).astype(np.float32)

    def _resample(self, mono: np.ndarray) -> np.ndarray:
        if self._raw.sample_rate == SAMPLE_RATE:
            # FFmpeg's resampler would copy it unchanged, at ten times the cost of the conversion itself.
            return mono
        frame = av.AudioFrame.from_ndarray(mono[None, :], format="flt", layout="mono")
        frame.sample_rate = self._raw.sample_rate
        frame.pts, frame.time_base = self._position, Fraction(1, self._raw.sample_rate)
        self._position += mono.size
        return _joined([out.to_ndarray()[0] for out in self._resampler.resample(frame)])


class _Pipe(io.RawIOBase):
    """Bytes pushed by one thread, read (blocking) by FFmpeg on another; empty read = end of stream."""

    def __init__(self) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue()
        self._buffer = b""
        self._ended = False
        #: Set while the reader waits for bytes nobody has pushed yet: all input so far is consumed.
        self.starved = threading.Event()

    def readable(self) -> bool:
        return True

    def put(self, data: bytes | None) -> None:
        self.starved.clear()
        self._chunks.put(data)

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and not self._ended:
            if self._chunks.empty():
                self.starved.set()
            chunk = self._chunks.get()
            if chunk is None:
                self._ended = True
            else:
                self._buffer = chunk
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


class ContainerStream:
    """Containerised audio pushed in pieces, demuxed and decoded on a thread of its own, which stops
    (AudioTooLong on the next call) once the output passes `max_seconds`."""

    def __init__(self, *, max_seconds: float | None = None) -> None:
        self._cap = DurationCap(max_seconds)
        self._pipe = _Pipe()
        self._decoded: queue.Queue[np.ndarray] = queue.Queue()
        self._failure: AudioError | None = None
        self._thread = threading.Thread(target=self._decode, name="stream-decoder", daemon=True)
        self._thread.start()

    def push(self, data: bytes) -> np.ndarray:
        """Hand over `data`; returns whatever has been decoded so far (decoding lags a little)."""
        if data:
            self._pipe.put(bytes(data))
        return self._drain()

    def finish(self, timeout: float = 10.0) -> np.ndarray:
        """End the input and return the rest of the audio (blocking until the decoder is done)."""
        self._pipe.put(None)
        self._thread.join(timeout)
        return self._drain()

    def flush(self, timeout: float = 2.0) -> np.ndarray:
        """Everything decodable from the input so far (blocking until the decoder has caught up)."""
        self._pipe.starved.wait(timeout)
        return self._drain()

    def close(self) -> None:
        """Abandon the stream: the decoder thread ends without waiting for more input."""
        self._pipe.put(None)

    def _drain(self) -> np.ndarray:
        if self._failure is not None:
            raise self._failure
        pieces = []
        while True:
            try:
                pieces.append(self._decoded.get_nowait())
            except queue.Empty:
                return _joined(pieces)

    def _decode(self) -> None:
        try:
            options = {"probesize": _PROBE_BYTES, "analyzeduration": "0"}
            with av.open(self._pipe, mode="r", options=options, metadata_errors=METADATA_ERRORS) as container:
                if not container.streams.audio:
                    raise UndecodableAudio("the stream has no audio track")
                stream = container.streams.audio[0]
                for chunk in self._cap.counted(resampled(decoded_frames(container, stream))):
                    self._decoded.put(chunk)
        except AudioError as error:
            self._failure = error
        except (av.FFmpegError, ValueError) as error:
            self._failure = UndecodableAudio(f"unrecognised audio stream: {error.__class__.__name__}")
        finally:
            self._pipe.put(None)


def _joined(pieces: list[np.ndarray]) -> np.ndarray:
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    return in_range(np.concatenate(pieces).astype(np.float32, copy=False))
