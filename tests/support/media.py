"""Media built at test time with PyAV's encoders, and signal checks against a reference."""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class AudioFormat:
    """How to encode a test file: container, codec and the stream's parameters."""

    container: str
    codec: str
    rate: int = 44_100
    layout: str = "mono"
    sample_format: str | None = None  # the codec's default when None
    options: dict[str, str] = field(default_factory=dict)
    #: The muxer's own options (an MPEG-TS programme's service id and PIDs).
    container_options: dict[str, str] = field(default_factory=dict)
    #: Audio handed to the encoder at a time; PCM encoders make each such frame a packet.
    frame_seconds: float = 1.0


#: One file per container and codec OpenAI accepts, at rates and layouts uploads really come in.
UPLOAD_FORMATS = {
    "speech.mp3": AudioFormat("mp3", "libmp3lame", rate=44_100),
    "speech.flac": AudioFormat("flac", "flac", rate=48_000, layout="stereo"),
    "speech.wav": AudioFormat("wav", "pcm_s24le", rate=48_000, layout="stereo"),
    "speech.ogg": AudioFormat("ogg", "libopus", rate=48_000),
    "speech.webm": AudioFormat("webm", "libopus", rate=48_000, layout="stereo"),
    "speech.m4a": AudioFormat("ipod", "aac", rate=44_100),
    "speech.mpga": AudioFormat("mp2", "mp2", rate=22_050),
    "speech.mpeg": AudioFormat("mpeg", "mp2", rate=44_100),
}


class CountingReader(io.BytesIO):
    """An upload that counts how much of it the decoder reads."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def encode_audio(samples: np.ndarray, rate: int, spec: AudioFormat) -> bytes:
    """Encode float samples shaped (channels, n) at `rate`; the encoder converts rate and layout itself."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=spec.container, options=spec.container_options) as output:
        stream = output.add_stream(spec.codec, rate=spec.rate, layout=spec.layout, options=spec.options)
        if spec.sample_format is not None:
            stream.codec_context.format = spec.sample_format
        _write_audio(output, stream, samples, rate, spec.frame_seconds)
    return buffer.getvalue()


def encode_video(
    container: str,
    video_codec: str,
    *,
    seconds: float,
    audio: tuple[np.ndarray, int] | None = None,
    audio_codec: str = "aac",
) -> bytes:
    """A small moving-gradient video, with `audio` (samples, rate) muxed in as a second stream if given."""
    fps = 10
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        video = output.add_stream(video_codec, rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio_stream = None
        if audio is not None:
            audio_stream = output.add_stream(audio_codec, rate=48_000, layout="mono")
        for index in range(round(seconds * fps)):
            pixels = np.full((48, 64, 3), index * 7 % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        if audio_stream is not None and audio is not None:
            _write_audio(output, audio_stream, *audio)
    return buffer.getvalue()


def _write_audio(
    output: av.container.OutputContainer,
    stream: av.AudioStream,
    samples: np.ndarray,
    rate: int,
    frame_seconds: float = 1.0,
) -> None:
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    # Frames of a second by default: a realistic size, and not one giant frame.
    size = max(1, round(rate * frame_seconds))
    for start in range(0, samples.shape[1], size):
        chunk = np.ascontiguousarray(samples[:, start : start + size], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        output.mux(stream.encode(frame))
    output.mux(stream.encode(None))


def read_pcm_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as float samples shaped (channels, n), read without FFmpeg to serve as a reference."""
    with wave.open(str(path), "rb") as reader:
        assert reader.getsampwidth() == 2
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
        channels, rate = reader.getnchannels(), reader.getframerate()
    return (pcm.reshape(-1, channels).T / 32768).astype(np.float32), rate


def pcm_wav(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM WAV written by the standard library, so it does not depend on the decoder under test."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(samples.shape[0])
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(_pcm16(samples))
    return buffer.getvalue()


def tagged_wav(samples: np.ndarray, rate: int, title: bytes) -> bytes:
    """`pcm_wav` with a RIFF INFO title of raw bytes, before the samples as FFmpeg writes it (any encoding:
    Windows recorders write their code page)."""
    plain = pcm_wav(samples, rate)
    title += b"\x00" * (2 - len(title) % 2)  # NUL-terminated, padded to an even length
    info = b"INFO" + b"INAM" + struct.pack("<I", len(title)) + title
    chunks = plain[12:36] + b"LIST" + struct.pack("<I", len(info)) + info + plain[36:]
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def one_sample_packets(container: str, samples: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM in `container` (matroska, nut, avi...), each sample a packet of its own: a crafted or
    damaged file whose cost is in its packets, not its audio."""
    pcm = _pcm16(samples[None])
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream("pcm_s16le", rate=rate, layout="mono")
        output.start_encoding()
        for index in range(len(samples)):
            packet = av.Packet(pcm[2 * index : 2 * index + 2])
            packet.stream, packet.pts, packet.dts = stream, index, index
            packet.time_base = Fraction(1, rate)
            output.mux(packet)
    return buffer.getvalue()


def one_sample_packets_caf(samples: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM in CAF with a packet table making each sample a packet (CAF's own writers give PCM
    a constant packet size, which its demuxer reads 4 KB at a time)."""
    pcm = _pcm16(samples[None])
    little_endian, bytes_per_packet, frames_per_packet, channels, bits = 2, 0, 1, 1, 16
    lpcm = int.from_bytes(b"lpcm", "big")
    desc = struct.pack(
        ">dIIIIII", rate, lpcm, little_endian, bytes_per_packet, frames_per_packet, channels, bits
    )
    # Packet count, frame count, priming and remainder frames, then each packet's size as a varint.
    table = struct.pack(">qqii", len(samples), len(samples), 0, 0) + b"\x02" * len(samples)
    edit_count = b"\x00" * 4
    chunks = [(b"desc", desc), (b"pakt", table), (b"data", edit_count + pcm)]
    return b"caff\x00\x01\x00\x00" + b"".join(
        kind + struct.pack(">q", len(body)) + body for kind, body in chunks
    )


def one_sample_blocks_adpcm_wav(samples: np.ndarray, rate: int) -> bytes:
    """IMA ADPCM WAV whose blocks are 4 bytes, a block header alone: each decodes to a frame of one sample,
    its header's predictor. The demuxer reads 4 KB packets, the decoder makes a thousand frames of each."""
    blocks = np.zeros((len(samples), 2), dtype="<i2")  # predictor, then step index 0 and a reserved byte
    blocks[:, 0] = np.frombuffer(_pcm16(samples[None]), dtype="<i2")
    block_align, bits, extra_size, samples_per_block = 4, 4, 2, 1
    fmt = struct.pack(
        "<HHIIHHHH", 0x11, 1, rate, rate * block_align, block_align, bits, extra_size, samples_per_block
    )
    data = blocks.tobytes()
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _pcm16(samples: np.ndarray) -> bytes:
    """Float samples shaped (channels, n) as interleaved little-endian 16-bit PCM."""
    return np.clip(np.round(samples.T * 32767), -32768, 32767).astype("<i2").tobytes()


def best_alignment(decoded: np.ndarray, reference: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The lag (decoded is late by `lag` samples) within ±max_lag that best matches, and Pearson r there."""
    size = len(decoded) + len(reference)
    spectrum = np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(reference, size))
    correlation = np.fft.irfft(spectrum, size)
    lags = np.r_[0 : max_lag + 1, -max_lag:0]
    lag = int(lags[np.argmax(correlation[lags])])
    return lag, pearson_at_lag(decoded, reference, lag)


def pearson_at_lag(decoded: np.ndarray, reference: np.ndarray, lag: int) -> float:
    late, early = (decoded[lag:], reference) if lag >= 0 else (decoded, reference[-lag:])
    overlap = min(len(late), len(early))
    return float(np.corrcoef(late[:overlap], early[:overlap])[0, 1])
