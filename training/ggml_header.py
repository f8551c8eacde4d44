"""The part of a ggml whisper file that is not weights: hyperparameters, mel filter bank, vocabulary.

whisper.cpp's for-tests model files carry exactly this. Training takes its mel filters (so features
are computed with the very numbers whisper.cpp uses) and its vocabulary bytes (so the exported model
speaks whisper's real multilingual token ids) from one of them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

GGML_MAGIC = 0x67676D6C
FTYPE_F32, FTYPE_F16 = 0, 1

#: The for-tests multilingual header that ships in the shared fixtures of this project.
DEFAULT_HEADER = (
    Path(__file__).resolve().parent.parent.parent / "shared/fixtures/models/for-tests-ggml-tiny.bin"
)


@dataclass(frozen=True)
class HParams:
    n_vocab: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int
    n_mels: int
    ftype: int

    def pack(self) -> bytes:
        return struct.pack("<I11i", GGML_MAGIC, *(getattr(self, name) for name in self.__dataclass_fields__))


@dataclass(frozen=True)
class Header:
    hparams: HParams
    #: (n_mels, n_fft // 2 + 1) float32: whisper.cpp multiplies power spectra by these rows.
    mel_filters: np.ndarray
    #: Everything from the vocabulary count to the end of the vocabulary, copied verbatim on export.
    vocabulary_blob: bytes
    #: Text tokens stored in the file; whisper.cpp adds the special tokens after them itself.
    vocabulary: tuple[bytes, ...]

    def with_hparams(self, **changes: int) -> Header:
        return replace(self, hparams=replace(self.hparams, **changes))

    def pack(self) -> bytes:
        """The header bytes a ggml model file starts with; tensors follow."""
        n_mels, n_fft = self.mel_filters.shape
        filters = struct.pack("<ii", n_mels, n_fft) + self.mel_filters.astype("<f4").tobytes()
        return self.hparams.pack() + filters + self.vocabulary_blob


def read_header(path: Path = DEFAULT_HEADER) -> Header:
    """Parse the header of ggml whisper file `path`, ignoring any tensors after the vocabulary."""
    blob = path.read_bytes()
    magic, *values = struct.unpack_from("<I11i", blob, 0)
    if magic != GGML_MAGIC:
        raise ValueError(f"{path} is not a ggml whisper model (magic {magic:#x})")
    hparams = HParams(*values)
    offset = 48
    n_mels, n_fft = struct.unpack_from("<ii", blob, offset)
    offset += 8
    filters = np.frombuffer(blob, dtype="<f4", count=n_mels * n_fft, offset=offset).reshape(n_mels, n_fft)
    offset += 4 * n_mels * n_fft
    vocabulary_start = offset
    (count,) = struct.unpack_from("<i", blob, offset)
    offset += 4
    tokens = []
    for _ in range(count):
        (length,) = struct.unpack_from("<I", blob, offset)
        offset += 4
        tokens.append(blob[offset : offset + length])
        offset += length
    return Header(
        hparams=hparams,
        mel_filters=filters.astype(np.float32),
        vocabulary_blob=blob[vocabulary_start:offset],
        vocabulary=tuple(tokens),
    )
