"""Audio input: decoding uploads into the 16 kHz mono samples whisper.cpp consumes."""

from whisper_api.audio.decode import (
    SAMPLE_RATE,
    AudioError,
    AudioTooLong,
    EmptyAudio,
    NoAudioStream,
    UndecodableAudio,
    decode_audio,
    probe_audio,
)

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "AudioTooLong",
    "EmptyAudio",
    "NoAudioStream",
    "UndecodableAudio",
    "decode_audio",
    "probe_audio",
]
