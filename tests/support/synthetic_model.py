"""Synthetic ggml whisper models: a real header and vocabulary with random weights.

whisper.cpp's for-tests files carry everything but the tensors. Appending tensors of the right
names, shapes and types yields a file whisper.cpp loads and runs at exactly the cost of a real
model of those dimensions. The text it produces is meaningless; the compute is real.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GGML_MAGIC = 0x67676D6C
F32, F16 = 0, 1


@dataclass(frozen=True)
class Dimensions:
    audio_state: int
    audio_head: int
    audio_layer: int
    text_state: int
    text_head: int
    text_layer: int


TINY = Dimensions(384, 6, 4, 384, 6, 4)
BASE = Dimensions(512, 8, 6, 512, 8, 6)
#: Small enough that a 30 s window takes milliseconds; for unit and end-to-end tests.
MINI = Dimensions(64, 2, 1, 64, 2, 1)


def _tensor(name: str, shape: tuple[int, ...], data: np.ndarray) -> bytes:
    """One ggml tensor record. `shape` is in ggml order (ne0 first, the fastest-varying axis)."""
    ttype = F16 if data.dtype == np.float16 else F32
    encoded = name.encode()
    header = struct.pack(f"<iii{len(shape)}i", len(shape), len(encoded), ttype, *shape)
    return header + encoded + np.ascontiguousarray(data).tobytes()


def _weights(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    count = int(np.prod(shape))
    return (rng.standard_normal(count, dtype=np.float32) * scale).astype(np.float16)


def _tensors(dims: Dimensions, n_vocab: int, n_audio_ctx: int, n_text_ctx: int, n_mels: int, seed: int):
    rng = np.random.default_rng(seed)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    def matrix(n_in: int, n_out: int) -> tuple[tuple[int, int], np.ndarray]:
        return (n_in, n_out), _weights(rng, (n_in, n_out), n_in**-0.5)

    def block(prefix: str, state: int, cross: bool):
        yield f"{prefix}.mlp_ln.weight", (state,), ones(state)
        yield f"{prefix}.mlp_ln.bias", (state,), zeros(state)
        yield (f"{prefix}.mlp.0.weight", *matrix(state, 4 * state))
        yield f"{prefix}.mlp.0.bias", (4 * state,), zeros(4 * state)
        yield (f"{prefix}.mlp.2.weight", *matrix(4 * state, state))
        yield f"{prefix}.mlp.2.bias", (state,), zeros(state)
        attentions = ["attn", "cross_attn"] if cross else ["attn"]
        for attn in attentions:
            yield f"{prefix}.{attn}_ln.weight", (state,), ones(state)
            yield f"{prefix}.{attn}_ln.bias", (state,), zeros(state)
            yield (f"{prefix}.{attn}.query.weight", *matrix(state, state))
            yield f"{prefix}.{attn}.query.bias", (state,), zeros(state)
            yield (f"{prefix}.{attn}.key.weight", *matrix(state, state))
            yield (f"{prefix}.{attn}.value.weight", *matrix(state, state))
            yield f"{prefix}.{attn}.value.bias", (state,), zeros(state)
            yield (f"{prefix}.{attn}.out.weight", *matrix(state, state))
            yield f"{prefix}.{attn}.out.bias", (state,), zeros(state)

    a, t = dims.audio_state, dims.text_state
    yield (
        "encoder.positional_embedding",
        (a, n_audio_ctx),
        rng.standard_normal(a * n_audio_ctx, dtype=np.float32) * 0.02,
    )
    yield "encoder.conv1.weight", (3, n_mels, a), _weights(rng, (3, n_mels, a), (3 * n_mels) ** -0.5)
    yield "encoder.conv1.bias", (1, a), zeros(a)
    yield "encoder.conv2.weight", (3, a, a), _weights(rng, (3, a, a), (3 * a) ** -0.5)
    yield "encoder.conv2.bias", (1, a), zeros(a)
    yield "encoder.ln_post.weight", (a,), ones(a)
    yield "encoder.ln_post.bias", (a,), zeros(a)
    for i in range(dims.audio_layer):
        yield from block(f"encoder.blocks.{i}", a, cross=False)
    yield (
        "decoder.positional_embedding",
        (t, n_text_ctx),
        rng.standard_normal(t * n_text_ctx, dtype=np.float32) * 0.02,
    )
    yield "decoder.token_embedding.weight", (t, n_vocab), _weights(rng, (t, n_vocab), 1.0)
    yield "decoder.ln.weight", (t,), ones(t)
    yield "decoder.ln.bias", (t,), zeros(t)
    for i in range(dims.text_layer):
        yield from block(f"decoder.blocks.{i}", t, cross=True)


def write_synthetic_model(
    header_file: Path, destination: Path, dims: Dimensions | None = None, seed: int = 0
) -> Path:
    """`header_file`'s header and vocabulary with `dims` (default: the header's own) and random weights."""
    blob = header_file.read_bytes()
    magic, *hparams = struct.unpack("<I11i", blob[:48])
    if magic != GGML_MAGIC:
        raise ValueError(f"{header_file} is not a ggml whisper model")
    n_vocab, n_audio_ctx, _, _, _, n_text_ctx, _, _, _, n_mels, ftype = hparams
    if dims is None:
        dims = Dimensions(hparams[2], hparams[3], hparams[4], hparams[6], hparams[7], hparams[8])
    new_hparams = [
        n_vocab,
        n_audio_ctx,
        dims.audio_state,
        dims.audio_head,
        dims.audio_layer,
        n_text_ctx,
        dims.text_state,
        dims.text_head,
        dims.text_layer,
        n_mels,
        ftype,
    ]
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with partial.open("wb") as out:
        out.write(struct.pack("<I11i", GGML_MAGIC, *new_hparams))
        out.write(blob[48:])
        for name, shape, data in _tensors(dims, n_vocab, n_audio_ctx, n_text_ctx, n_mels, seed):
            out.write(_tensor(name, shape, data))
    partial.replace(destination)
    return destination


__all__ = ["BASE", "MINI", "TINY", "Dimensions", "write_synthetic_model"]
