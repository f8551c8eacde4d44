"""`whisper-api models import DIR`: a CTranslate2 Whisper model (faster-whisper's and speaches' format) as a
whisper.cpp ggml file, in f16 or bf16 or quantised: to q8_0 / q5_0 / q5_1 / q4_0 by this module with
numpy, to q4_K / q5_K / q6_K / iq4_nl (and bf16) by ggml's own converter in the process's libwhisper (the
quantisers search each block for its best scales; a numpy copy of the search would be a second
implementation to keep byte-exact).

CTranslate2's model.bin: u32 binary version, the spec's name, u32 revision, then its variables (name,
u8 rank, u32 dims, u8 dtype, u32 byte count, bytes) and aliases (name → name); strings are a u16 length
that counts a trailing NUL. Whisper's spec fuses the self-attention's query/key/value and the
cross-attention's key/value into one matrix each, which whisper.cpp wants apart.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import hashlib
import json
import mmap
import os
import re
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal, get_args

import numpy as np

from whisper_api import __version__
from whisper_api.binding import declarations
from whisper_api.binding.library import LibraryError, load
from whisper_api.engine.catalog import FILE_PREFIX, MODEL_SUFFIX, GgmlHeader, size_name
from whisper_api.engine.cpus import available_cores
from whisper_api.engine.download import PARTIAL_SUFFIX, DownloadError, model_name

Quantization = Literal["f16", "bf16", "q8_0", "q5_0", "q5_1", "q4_0", "q4_K", "q5_K", "q6_K", "iq4_nl"]
QUANTIZATIONS: tuple[Quantization, ...] = get_args(Quantization)
SIDECAR_SUFFIX = ".json"
SOURCE_FORMAT = "ctranslate2"

_CT2_VERSION = 6
_CT2_SPEC = "WhisperSpec"
_CT2_FLOAT32, _CT2_INT8, _CT2_INT16, _CT2_INT32, _CT2_FLOAT16, _CT2_BFLOAT16 = range(6)
_CT2_DTYPES: dict[int, np.dtype] = {
    _CT2_FLOAT32: np.dtype("<f4"),
    _CT2_INT8: np.dtype("i1"),
    _CT2_INT16: np.dtype("<i2"),
    _CT2_INT32: np.dtype("<i4"),
    _CT2_FLOAT16: np.dtype("<f2"),
    _CT2_BFLOAT16: np.dtype("<u2"),
}

# ggml's tensor types and whisper.cpp's file types (ggml_ftype) for each weight type.
_TENSOR_TYPES: dict[Quantization, int] = {
    "f16": declarations.GGML_TYPE_F16,
    "bf16": declarations.GGML_TYPE_BF16,
    "q8_0": declarations.GGML_TYPE_Q8_0,
    "q5_0": declarations.GGML_TYPE_Q5_0,
    "q5_1": declarations.GGML_TYPE_Q5_1,
    "q4_0": declarations.GGML_TYPE_Q4_0,
    "q4_K": declarations.GGML_TYPE_Q4_K,
    "q5_K": declarations.GGML_TYPE_Q5_K,
    "q6_K": declarations.GGML_TYPE_Q6_K,
    "iq4_nl": declarations.GGML_TYPE_IQ4_NL,
}
_FILE_TYPES: dict[Quantization, int] = {
    "f16": 1,
    "bf16": 24,
    "q8_0": 7,
    "q5_0": 8,
    "q5_1": 9,
    "q4_0": 2,
    "q4_K": 12,
    "q5_K": 13,
    "q6_K": 14,
    "iq4_nl": 19,
}
#: The types ggml's quantiser writes (the others are numpy's, below).
BY_GGML: frozenset[Quantization] = frozenset({"bf16", "q4_K", "q5_K", "q6_K", "iq4_nl"})
# whisper.cpp's quantize tool stores ftype + 1000 * ggml's quantisation-format version (2 since 2023).
_QUANT_FORMAT_VERSION = 2000
#: 16-bit floats, no blocks: any row length, and no quantisation-format version in the file type
_UNQUANTISED: frozenset[Quantization] = frozenset({"f16", "bf16"})
BLOCK = 32
#: The k-quants' super-blocks (QK_K): a row must hold whole ones.
SUPER_BLOCK = 256

# The byte-level BPE tokens (GPT-2's 50256 and <|endoftext|>, or the multilingual 50257) come first in
# both tokenizers; whisper.cpp names every special token after them itself, so files hold only these.
_BPE_TOKENS = 50257
_SAMPLE_RATE = 16_000
_N_FFT = 400


class ConversionError(Exception):
    """An import failed; the message is a sentence for a terminal user, and nothing was left behind."""


# --- CTranslate2's model.bin ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Variable:
    shape: tuple[int, ...]
    dtype: int
    offset: int


class CT2Model:
    """A CTranslate2 model.bin, memory-mapped: its spec, revision and variables, read on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("rb")
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as error:  # an empty file cannot be mapped
            self._file.close()
            raise ConversionError(f"{path} is truncated (empty).") from error
        try:
            self._read_index()
        except BaseException:
            self.close()
            raise

    def _read_index(self) -> None:
        self._cursor = 0
        version = self._unpack("<I")
        if version != _CT2_VERSION:
            raise ConversionError(
                f"{self.path} is CTranslate2 model format version {version}; only version {_CT2_VERSION} "
                "(CTranslate2 3 and later) is supported."
            )
        self.spec = self._string()
        self.revision = self._unpack("<I")
        self.variables: dict[str, _Variable] = {}
        for _ in range(self._unpack("<I")):
            name = self._string()
            shape = tuple(self._unpack("<I") for _ in range(self._unpack("<B")))
            dtype = self._unpack("<B")
            size = self._unpack("<I")
            if dtype not in _CT2_DTYPES or size != _CT2_DTYPES[dtype].itemsize * int(np.prod(shape)):
                raise ConversionError(f"{self.path} is corrupt: variable {name!r} has a bad type or size.")
            self.variables[name] = _Variable(shape, dtype, self._cursor)
            self._skip(size)
        self.aliases = {self._string(): self._string() for _ in range(self._unpack("<I"))}

    def _skip(self, size: int) -> None:
        if self._cursor + size > len(self._map):
            raise ConversionError(
                f"{self.path} is truncated: it ends at byte {len(self._map)}, inside its variables "
                f"(byte {self._cursor + size} was expected)."
            )
        self._cursor += size

    def _unpack(self, fmt: str) -> int:
        start = self._cursor
        self._skip(struct.calcsize(fmt))
        value: int = struct.unpack_from(fmt, self._map, start)[0]
        return value

    def _string(self) -> str:
        length = self._unpack("<H")
        start = self._cursor
        self._skip(length)
        return bytes(self._map[start : start + length]).rstrip(b"\0").decode("utf-8", "replace")

    def close(self) -> None:
        # Arrays may still view the map (say, from a traceback); it is unmapped when they go.
        with contextlib.suppress(BufferError):
            self._map.close()
        self._file.close()

    def __enter__(self) -> CT2Model:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def __contains__(self, name: str) -> bool:
        return name in self.variables or name in self.aliases

    def shape(self, name: str) -> tuple[int, ...]:
        return self._variable(name).shape

    def scalar(self, name: str) -> int:
        return int(self.raw(name).reshape(-1)[0])

    def raw(self, name: str) -> np.ndarray:
        """The variable as stored (a read-only view of the file)."""
        variable = self._variable(name)
        dtype = _CT2_DTYPES[variable.dtype]
        count = int(np.prod(variable.shape))
        return np.frombuffer(self._map, dtype, count, variable.offset).reshape(variable.shape)

    def float32(self, name: str) -> np.ndarray:
        """The variable as float32: float16 and bfloat16 widened, int8 and int16 divided by their scale."""
        variable = self._variable(name)
        stored = self.raw(name)
        if variable.dtype in (_CT2_FLOAT32, _CT2_FLOAT16):
            return stored.astype(np.float32)
        if variable.dtype == _CT2_BFLOAT16:  # bfloat16 is the high half of a float32
            return (stored.astype(np.uint32) << 16).view(np.float32)
        scale_name = f"{name}_scale"
        # A zero point means another quantisation scheme (AWQ's), which Whisper conversions do not use.
        if variable.dtype in (_CT2_INT8, _CT2_INT16) and scale_name in self and f"{name}_zero" not in self:
            # CTranslate2 keeps one scale per output row (int8) or one for the whole matrix (int16).
            scale = self.float32(scale_name).reshape(-1, *([1] * (stored.ndim - 1)))
            return stored.astype(np.float32) / scale
        raise ConversionError(f"{self.path}: variable {name!r} is stored as an unsupported type.")

    def _variable(self, name: str) -> _Variable:
        target = self.aliases.get(name, name)
        if target not in self.variables:
            raise ConversionError(
                f"{self.path} lacks {name!r}: not a Whisper model as CTranslate2 {_CT2_SPEC} "
                f"revision {self.revision} lays it out."
            )
        return self.variables[target]


# --- Whisper's hyperparameters and tensors --------------------------------------------------------------


def _layers(model: CT2Model, stack: str) -> int:
    pattern = re.compile(rf"{stack}/layer_(\d+)/")
    return len({m.group(1) for name in model.variables if (m := pattern.match(name))})


def hyperparameters(model: CT2Model, quantization: Quantization) -> GgmlHeader:
    """The header of the ggml file `model` becomes with its 2-D weights in `quantization`."""
    n_audio_ctx, n_audio_state = model.shape("encoder/position_encodings/encodings")
    n_text_ctx, n_text_state = model.shape("decoder/position_encodings/encodings")
    h = GgmlHeader(
        n_vocab=model.shape("decoder/embeddings/weight")[0],
        n_audio_ctx=n_audio_ctx,
        n_audio_state=n_audio_state,
        n_audio_head=model.scalar("encoder/num_heads"),
        n_audio_layer=_layers(model, "encoder"),
        n_text_ctx=n_text_ctx,
        n_text_state=n_text_state,
        n_text_head=model.scalar("decoder/num_heads"),
        n_text_layer=_layers(model, "decoder"),
        n_mels=model.shape("encoder/conv1/weight")[1],
        ftype=_FILE_TYPES[quantization] + (0 if quantization in _UNQUANTISED else _QUANT_FORMAT_VERSION),
    )
    # whisper.cpp asserts the first and divides by the heads; a model failing these would not load.
    if (
        h.n_audio_state != h.n_text_state
        or min(h.n_audio_layer, h.n_text_layer, h.n_audio_head, h.n_text_head) < 1
        or h.n_audio_state % h.n_audio_head
        or h.n_text_state % h.n_text_head
    ):
        raise ConversionError(f"{model.path} has a shape whisper.cpp cannot run: {h}.")
    return h


#: How whisper.cpp stores a tensor: the requested weight type (matrices), f16 (convolution kernels), f32.
Storage = Literal["weight", "conv", "f32"]
Tensor = tuple[str, np.ndarray, Storage]


def _linear(model: CT2Model, source: str, *targets: str) -> Iterator[Tensor]:
    """A CTranslate2 linear layer as whisper.cpp's; a fused one is split row-wise among `targets`.

    Fused layers hold their parts in the order query, key, value. Keys get no bias in whisper.cpp:
    Whisper has none, and any would only add the same amount to every score of a query, which softmax
    cancels.
    """
    weights = np.split(model.float32(f"{source}/weight"), len(targets))
    biases = np.split(model.float32(f"{source}/bias"), len(targets))
    for name, weight, bias in zip(targets, weights, biases, strict=True):
        yield f"{name}.weight", weight, "weight"
        if not name.endswith(".key"):
            yield f"{name}.bias", bias, "f32"


def _norm(model: CT2Model, source: str, target: str) -> Iterator[Tensor]:
    yield f"{target}.weight", model.float32(f"{source}/gamma"), "f32"
    yield f"{target}.bias", model.float32(f"{source}/beta"), "f32"


def _self_attention(model: CT2Model, source: str, target: str) -> Iterator[Tensor]:
    attention, parts = f"{source}/self_attention", (f"{target}.attn.{p}" for p in ("query", "key", "value"))
    yield from _norm(model, f"{attention}/layer_norm", f"{target}.attn_ln")
    yield from _linear(model, f"{attention}/linear_0", *parts)
    yield from _linear(model, f"{attention}/linear_1", f"{target}.attn.out")


def _cross_attention(model: CT2Model, source: str, target: str) -> Iterator[Tensor]:
    attention, cross = f"{source}/attention", f"{target}.cross_attn"
    yield from _norm(model, f"{attention}/layer_norm", f"{cross}_ln")
    yield from _linear(model, f"{attention}/linear_0", f"{cross}.query")
    yield from _linear(model, f"{attention}/linear_1", f"{cross}.key", f"{cross}.value")
    yield from _linear(model, f"{attention}/linear_2", f"{cross}.out")


def _mlp(model: CT2Model, source: str, target: str) -> Iterator[Tensor]:
    yield from _norm(model, f"{source}/ffn/layer_norm", f"{target}.mlp_ln")
    yield from _linear(model, f"{source}/ffn/linear_0", f"{target}.mlp.0")
    yield from _linear(model, f"{source}/ffn/linear_1", f"{target}.mlp.2")


def _tensors(model: CT2Model, h: GgmlHeader) -> Iterator[Tensor]:
    """whisper.cpp's tensors (its loader's names) from CTranslate2's variables (its Whisper spec's)."""
    for conv in ("conv1", "conv2"):
        yield f"encoder.{conv}.weight", model.float32(f"encoder/{conv}/weight"), "conv"
        yield f"encoder.{conv}.bias", model.float32(f"encoder/{conv}/bias").reshape(-1, 1), "f32"
    yield "encoder.positional_embedding", model.float32("encoder/position_encodings/encodings"), "f32"
    for i in range(h.n_audio_layer):
        yield from _self_attention(model, f"encoder/layer_{i}", f"encoder.blocks.{i}")
        yield from _mlp(model, f"encoder/layer_{i}", f"encoder.blocks.{i}")
    yield from _norm(model, "encoder/layer_norm", "encoder.ln_post")

    # The output projection is the token embedding in Whisper (CTranslate2 stores it as an alias).
    yield "decoder.token_embedding.weight", model.float32("decoder/embeddings/weight"), "weight"
    yield "decoder.positional_embedding", model.float32("decoder/position_encodings/encodings"), "f32"
    for i in range(h.n_text_layer):
        yield from _self_attention(model, f"decoder/layer_{i}", f"decoder.blocks.{i}")
        yield from _cross_attention(model, f"decoder/layer_{i}", f"decoder.blocks.{i}")
        yield from _mlp(model, f"decoder/layer_{i}", f"decoder.blocks.{i}")
    yield from _norm(model, "decoder/layer_norm", "decoder.ln")


# --- The mel filterbank and the vocabulary --------------------------------------------------------------


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    # Slaney's scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above (27 mels per factor 6.4).
    linear = hz / (200.0 / 3)
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, logarithmic, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    linear = mel * (200.0 / 3)
    logarithmic = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, logarithmic, linear)


def mel_filters(n_mels: int) -> np.ndarray:
    """Whisper's (n_mels, 201) filterbank: Slaney-scale, Slaney-normalised triangles over 0-8 kHz.

    The same numbers as openai-whisper's mel_filters.npz (librosa's defaults at 16 kHz, n_fft 400).
    """
    frequencies = np.linspace(0.0, _SAMPLE_RATE / 2, 1 + _N_FFT // 2)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(_SAMPLE_RATE / 2)), n_mels + 2)
    )
    widths = np.diff(edges)
    distances = edges[:, None] - frequencies[None, :]
    rising = -distances[:-2] / widths[:-1, None]
    falling = distances[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # each triangle's area is the same
    return weights.astype(np.float32)


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE spells each byte as a printable character; this maps them back."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table = {chr(b): b for b in printable}
    others = [b for b in range(256) if b not in table.values()]
    table.update({chr(256 + i): b for i, b in enumerate(others)})
    return table


def read_vocabulary(directory: Path) -> list[bytes]:
    """The byte-level BPE tokens, as bytes, from vocabulary.json / vocabulary.txt / tokenizer.json."""
    tokens: list[str]
    if (directory / "vocabulary.json").is_file():
        tokens = json.loads((directory / "vocabulary.json").read_text("utf-8"))
    elif (directory / "vocabulary.txt").is_file():
        tokens = (directory / "vocabulary.txt").read_text("utf-8").split("\n")
    elif (directory / "tokenizer.json").is_file():
        by_id = json.loads((directory / "tokenizer.json").read_text("utf-8"))["model"]["vocab"]
        tokens = sorted(by_id, key=by_id.__getitem__)
    else:
        raise ConversionError(f"{directory} has no vocabulary.json, vocabulary.txt or tokenizer.json.")
    if len(tokens) < _BPE_TOKENS:
        raise ConversionError(
            f"{directory}'s vocabulary has {len(tokens)} tokens; Whisper's has {_BPE_TOKENS} and more."
        )
    decoder = _byte_decoder()
    try:
        return [bytes(decoder[c] for c in token) for token in tokens[:_BPE_TOKENS]]
    except KeyError as error:
        raise ConversionError(
            f"{directory}'s vocabulary is not a byte-level BPE one (character {error})."
        ) from None


# --- ggml's block quantisation ----------------------------------------------------------------------------


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """C's roundf (numpy's round goes to even)."""
    return np.trunc(x + np.copysign(np.float32(0.5), x))


def _safe_inverse(d: np.ndarray) -> np.ndarray:
    # A scale below float32's normal range would overflow its inverse; stored as f16 it is 0 anyway, so
    # its block reads back the same whatever the quants.
    return np.divide(np.float32(1.0), d, out=np.zeros_like(d), where=np.abs(d) >= np.finfo(np.float32).tiny)


def _nibbles(q: np.ndarray) -> np.ndarray:
    """q4/q5 blocks' low nibbles: element j with element j + 16 in one byte."""
    return ((q[:, :16] & 0x0F) | ((q[:, 16:] & 0x0F) << 4)).astype(np.uint8)


def _fifth_bits(q: np.ndarray) -> np.ndarray:
    """q5 blocks' fifth bits, as 4 bytes of a little-endian u32 mask per block."""
    high = ((q.astype(np.uint32) >> 4) & 1) << np.arange(BLOCK, dtype=np.uint32)
    return np.bitwise_or.reduce(high, axis=1).astype("<u4").view(np.uint8).reshape(-1, 4)


def _half(x: np.ndarray) -> np.ndarray:
    return x.astype("<f2").view(np.uint8).reshape(-1, 2)


def _row_block(kind: Quantization) -> int:
    if kind in _UNQUANTISED:
        return 1
    return SUPER_BLOCK if kind.endswith("_K") else BLOCK


def _ggml_quantize(values: np.ndarray, kind: Quantization) -> bytes:
    """`values`, row by row (its last axis), by ggml's quantiser in the process's libwhisper."""
    library = load()
    ggml_type = _TENSOR_TYPES[kind]
    rows = np.ascontiguousarray(values, dtype=np.float32).reshape(-1, values.shape[-1])
    n_rows, n_per_row = rows.shape
    out = np.empty(library.ggml_row_size(ggml_type, n_per_row) * n_rows, np.uint8)
    source = rows.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

    def chunk(first: int, end: int) -> int:
        # No importance matrix: none of BY_GGML's types needs one (a test asks ggml), and the loss it
        # recovers would need calibration audio this import does not have.
        return int(
            library.ggml_quantize_chunk(
                ggml_type, source, out.ctypes.data, first * n_per_row, end - first, n_per_row, None
            )
        )

    # The search for each block's scales is the import's longest part (iq4_nl's most of all). ctypes lets
    # go of the GIL, and ggml writes each range of rows at its own offset, so every core takes a range.
    bounds = np.linspace(0, n_rows, min(n_rows, available_cores()) + 1).astype(int).tolist()
    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        written = sum(pool.map(chunk, bounds[:-1], bounds[1:]))
    return out[:written].tobytes()


def quantize(values: np.ndarray, kind: Quantization) -> bytes:
    """`values` (rows a multiple of 32 long, 256 for the k-quants) in ggml's type `kind`.

    The types in BY_GGML are ggml's own quantiser's output; the others are written here as ggml's reference
    quantisers write them, in blocks of 32. q8_0: f16 scale, 32 int8. q5_0: f16 scale, u32 fifth bits,
    16 bytes of nibbles. q5_1: f16 scale, f16 minimum, the same bits and nibbles. q4_0: f16 scale, 16 bytes
    of nibbles.
    """
    if kind in BY_GGML:
        return _ggml_quantize(values, kind)
    if kind == "f16":
        return values.astype("<f2").tobytes()
    x = np.ascontiguousarray(values, dtype=np.float32).reshape(-1, BLOCK)
    if kind == "q8_0":
        d = np.abs(x).max(axis=1) / np.float32(127)
        q = _round_half_away(x * _safe_inverse(d)[:, None]).astype(np.int8)
        return np.hstack([_half(d), q.view(np.uint8)]).tobytes()
    if kind in ("q5_0", "q4_0"):
        # The value of largest magnitude maps to the lowest level, -16 or -8, keeping its sign.
        levels = 16 if kind == "q5_0" else 8
        extreme = x[np.arange(len(x)), np.abs(x).argmax(axis=1)]
        d = extreme / np.float32(-levels)
        scaled = np.trunc(x * _safe_inverse(d)[:, None] + np.float32(levels + 0.5))
        q = np.minimum(2 * levels - 1, scaled).astype(np.uint8)
        if kind == "q4_0":
            return np.hstack([_half(d), _nibbles(q)]).tobytes()
        return np.hstack([_half(d), _fifth_bits(q), _nibbles(q)]).tobytes()
    if kind == "q5_1":
        low, top = x.min(axis=1), x.max(axis=1)
        d = (top - low) / np.float32(31)
        q = np.trunc((x - low[:, None]) * _safe_inverse(d)[:, None] + np.float32(0.5)).astype(np.uint8)
        return np.hstack([_half(d), _half(low), _fifth_bits(q), _nibbles(q)]).tobytes()
    raise ValueError(f"unknown quantization {kind!r}")


# --- Writing the ggml file ------------------------------------------------------------------------------


def _write_tensor(
    out: BinaryIO, name: str, data: np.ndarray, ggml_type: int, quantization: Quantization
) -> None:
    encoded = name.encode()
    out.write(struct.pack("<3i", data.ndim, len(encoded), ggml_type))
    out.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))  # ggml lists dimensions innermost first
    out.write(encoded)
    if ggml_type == declarations.GGML_TYPE_F32:
        out.write(data.astype("<f4").tobytes())
    elif ggml_type == declarations.GGML_TYPE_F16:
        out.write(data.astype("<f2").tobytes())
    else:
        out.write(quantize(data, quantization))


def _tensor_type(name: str, data: np.ndarray, storage: Storage, quantization: Quantization) -> int:
    if storage == "f32":
        return declarations.GGML_TYPE_F32
    if storage == "conv":
        return declarations.GGML_TYPE_F16  # whisper.cpp's convolutions run in f16 whatever the weight type
    block = _row_block(quantization)
    if data.shape[-1] % block:
        # llama.cpp would store such a tensor in a 32-block type instead; whisper.cpp cannot load that:
        # it makes every matrix in the file's one type and refuses a tensor of another size.
        fallback = ", and whisper.cpp keeps every matrix of a file in one type: iq4_nl, q5_0 or q8_0 fit"
        raise ConversionError(
            f"{name} has rows of {data.shape[-1]} values; {quantization} needs a multiple of {block}"
            f"{fallback if block == SUPER_BLOCK else ''}."
        )
    return _TENSOR_TYPES[quantization]


def write_ggml(model: CT2Model, vocabulary: list[bytes], out: BinaryIO, quantization: Quantization) -> None:
    h = hyperparameters(model, quantization)
    out.write(h.packed())
    filters = mel_filters(h.n_mels)
    out.write(struct.pack("<2i", *filters.shape))
    out.write(filters.astype("<f4").tobytes())
    out.write(struct.pack("<i", len(vocabulary)))
    for token in vocabulary:
        out.write(struct.pack("<i", len(token)))
        out.write(token)
    for name, data, storage in _tensors(model, h):
        _write_tensor(out, name, data, _tensor_type(name, data, storage, quantization), quantization)


# --- `models import` --------------------------------------------------------------------------------------


def default_name(h: GgmlHeader, quantization: Quantization) -> str:
    """`ggml-base`, `ggml-base.en`, `ggml-large-v3-q8_0`, …: whisper.cpp's names for the same models."""
    size = size_name(h.n_audio_layer)
    if size is None:
        size = f"custom-{h.n_audio_layer}x{h.n_audio_state}"
    elif size == "large" and h.n_mels == 128:  # large-v3 and its turbo are the ones with 128 mel bins
        size = "large-v3-turbo" if h.n_text_layer == 4 else "large-v3"
    language = "" if h.multilingual else ".en"
    suffix = "" if quantization == "f16" else f"-{quantization}"
    return f"{FILE_PREFIX}{size}{language}{suffix}"


@dataclass(frozen=True, slots=True)
class Imported:
    path: Path
    sidecar: Path
    hyperparameters: GgmlHeader


def import_ct2(
    source: Path,
    models_dir: Path,
    *,
    quantization: Quantization = "f16",
    name: str | None = None,
    force: bool = False,
) -> Imported:
    """Convert the CTranslate2 Whisper model in directory `source` into `models_dir`, with a sidecar.

    Written to `*.partial` files, fsynced and renamed, so a failed or interrupted import leaves nothing.
    """
    source = Path(source)
    if not source.is_dir():
        raise ConversionError(f"{source} is not a directory (expected a CTranslate2 model directory).")
    model_bin = source / "model.bin"
    if not model_bin.is_file():
        raise ConversionError(f"{source} has no model.bin: not a CTranslate2 model directory.")
    if quantization not in QUANTIZATIONS:
        raise ConversionError(f"unknown quantization {quantization!r}; one of {', '.join(QUANTIZATIONS)}.")
    if quantization in BY_GGML:
        try:
            load()
        except LibraryError as error:
            raise ConversionError(f"{quantization} needs ggml's quantiser, in libwhisper: {error}.") from None
    with CT2Model(model_bin) as model:
        if model.spec != _CT2_SPEC:
            raise ConversionError(
                f"unsupported architecture: {model.spec} (only {_CT2_SPEC} converts to whisper.cpp)."
            )
        h = hyperparameters(model, quantization)
        vocabulary = read_vocabulary(source)
        try:
            stem = f"{FILE_PREFIX}{model_name(name)}" if name else default_name(h, quantization)
        except DownloadError:
            raise ConversionError(
                f"{name!r} is not a model name: letters, digits, '.', '_' and '-', such as base-q8_0."
            ) from None
        destination = Path(models_dir) / f"{stem}{MODEL_SUFFIX}"
        sidecar = destination.with_name(f"{stem}{SIDECAR_SUFFIX}")
        if destination.exists() and not force:
            raise ConversionError(f"{destination} already exists; --force replaces it.")
        partials = [p.with_name(p.name + PARTIAL_SUFFIX) for p in (destination, sidecar)]
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            with partials[0].open("wb") as out:
                write_ggml(model, vocabulary, out, quantization)
                out.flush()
                os.fsync(out.fileno())
            provenance = {
                "model": destination.name,
                "source": str(source.resolve()),
                "source_format": SOURCE_FORMAT,
                "source_sha256": _sha256(model_bin),
                "quantization": quantization,
                "sha256": _sha256(partials[0]),
                "size_bytes": partials[0].stat().st_size,
                "imported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "imported_with": f"whisper-api {__version__}",
            }
            with partials[1].open("w", encoding="utf-8") as out:
                json.dump(provenance, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(partials[0], destination)
            os.replace(partials[1], sidecar)
        except BaseException as error:
            # Whatever stopped the import (including Ctrl-C), a half-written file must not stay behind.
            for partial in partials:
                partial.unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise ConversionError(f"could not write {destination}: {error.strerror or error}.") from error
            raise
    return Imported(destination, sidecar, h)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


__all__ = [
    "BY_GGML",
    "QUANTIZATIONS",
    "CT2Model",
    "ConversionError",
    "Imported",
    "Quantization",
    "default_name",
    "import_ct2",
    "mel_filters",
    "quantize",
    "read_vocabulary",
]
