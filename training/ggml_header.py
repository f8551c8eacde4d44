"""The part of a ggml whisper file that is not weights: hyperparameters, mel filter bank, vocabulary.

whisper.cpp's for-tests model files carry exactly this. Training takes its mel filters (so features
are computed with the very numbers whisper.cpp uses) and its vocabulary bytes (so the exported model
speaks whisper's real multilingual token ids) from one of them.
"""

from __future__ import annotations

import struct
from dataclasses import astuple, dataclass, replace
from pathlib import Path

import numpy as np

from whisper_api.engine.catalog import GGML_MAGIC, HEADER, GgmlHeader, parse_header

FTYPE_F16 = 1

#: The for-tests multilingual header that ships in the shared fixtures of this project.
DEFAULT_HEADER = (
    Path(__file__).resolve().parent.parent.parent / "shared/fixtures/models/for-tests-ggml-tiny.bin"
)


@dataclass(frozen=True)
class Header:
    #: The hyperparameters, read with the service's own parser (engine/catalog.py).
    hparams: GgmlHeader
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
        return HEADER.pack(GGML_MAGIC, *astuple(self.hparams)) + filters + self.vocabulary_blob


def read_header(path: Path = DEFAULT_HEADER) -> Header:
    """Parse the header of ggml whisper file `path`, ignoring any tensors after the vocabulary."""
    blob = path.read_bytes()
    hparams = parse_header(blob)
    if hparams is None:
        raise ValueError(f"{path} is not a ggml whisper model")
    offset = HEADER.size
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
