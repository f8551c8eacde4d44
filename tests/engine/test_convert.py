"""`models import`: CTranslate2 Whisper models (faster-whisper's) become ggml files whisper.cpp loads."""

from __future__ import annotations

import ctypes
import glob
import json
import os
import re
from pathlib import Path

import _pywhispercpp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.support.ct2 import (
    byte_level,
    fixture_mel_filters,
    fixture_vocabulary,
    rewrite_with_ctranslate2,
    write_model_bin,
    write_synthetic_ct2_model,
)
from whisper_api.audio import decode_audio
from whisper_api.binding.library import load
from whisper_api.engine.catalog import GgmlHeader, ModelCatalog, read_header
from whisper_api.engine.convert import (
    BLOCK,
    BY_GGML,
    ConversionError,
    CT2Model,
    default_name,
    import_ct2,
    mel_filters,
    quantize,
    read_vocabulary,
)
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import WhisperContext

FAST = DecodeOptions(language="en", temperature_increment_on_fallback=0.0)
#: OpenAI's reference transcript of jfk.wav.
JFK = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


@pytest.fixture(scope="module")
def tiny_fixture(fixtures_dir: Path) -> Path:
    """whisper.cpp's weightless tiny: its header holds OpenAI's mel filters and vocabulary."""
    return fixtures_dir / "models" / "for-tests-ggml-tiny.bin"


@pytest.fixture(scope="module")
def synthetic_ct2(tiny_fixture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_ct2_model(
        tmp_path_factory.mktemp("ct2") / "tiny", fixture_vocabulary(tiny_fixture)
    )


def test_a_synthetic_ct2_model_becomes_a_ggml_file_whisper_cpp_loads_and_runs(
    synthetic_ct2: Path, tmp_path: Path, jfk_wav: Path
) -> None:
    imported = import_ct2(synthetic_ct2, tmp_path)
    context = WhisperContext.load(imported.path)
    try:
        transcript = context.transcribe(decode_audio(jfk_wav)[: 16_000 * 2], FAST, threads=1)
    finally:
        context.close()
    assert transcript.duration == pytest.approx(2.0)


def test_an_english_only_model_imports_as_dot_en_and_loads(fixtures_dir: Path, tmp_path: Path) -> None:
    vocabulary = fixture_vocabulary(fixtures_dir / "models" / "for-tests-ggml-tiny.en.bin")
    source = write_synthetic_ct2_model(tmp_path / "ct2", vocabulary, n_vocab=51864)
    imported = import_ct2(source, tmp_path / "models")
    assert imported.path.name == "ggml-custom-1x64.en.bin"
    assert not ModelCatalog(imported.path.parent, "custom-1x64.en").resolve("custom-1x64.en").multilingual
    context = WhisperContext.load(imported.path)
    try:
        context.transcribe(np.zeros(16_000, np.float32), FAST, threads=1)
    finally:
        context.close()


@pytest.mark.parametrize("quantization", ["bf16", "q8_0", "q5_0", "q5_1", "q4_0", "iq4_nl"])
def test_a_quantised_import_loads_and_runs(synthetic_ct2: Path, tmp_path: Path, quantization: str) -> None:
    imported = import_ct2(synthetic_ct2, tmp_path, quantization=quantization)  # type: ignore[arg-type]
    context = WhisperContext.load(imported.path)
    try:
        context.transcribe(np.zeros(16_000, np.float32), FAST, threads=1)
    finally:
        context.close()


@pytest.fixture(scope="module")
def synthetic_ct2_256(tiny_fixture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 wide: rows of whole k-quant super-blocks, as in base (512) and every larger size."""
    return write_synthetic_ct2_model(
        tmp_path_factory.mktemp("ct2-256") / "tiny", fixture_vocabulary(tiny_fixture), state=256, heads=4
    )


def test_a_k_quant_import_loads_and_runs(synthetic_ct2_256: Path, tmp_path: Path) -> None:
    imported = import_ct2(synthetic_ct2_256, tmp_path, quantization="q4_K")
    header = read_header(imported.path)
    assert header is not None and header.ftype == 2012  # ggml_ftype 12, mostly q4_K
    context = WhisperContext.load(imported.path)
    try:
        context.transcribe(np.zeros(16_000, np.float32), FAST, threads=1)
    finally:
        context.close()


@pytest.mark.parametrize("quantization", ["q4_K", "q5_K", "q6_K"])
def test_a_k_quant_of_rows_short_of_256_is_refused_and_leaves_nothing(
    synthetic_ct2: Path, tmp_path: Path, quantization: str
) -> None:
    # No per-tensor fallback to a 32-block type, as llama.cpp has: whisper.cpp would refuse the file.
    with pytest.raises(ConversionError, match=rf"rows of 64 values; {quantization} needs a multiple of 256"):
        import_ct2(synthetic_ct2, tmp_path, quantization=quantization)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_the_header_describes_the_model(synthetic_ct2: Path, tmp_path: Path) -> None:
    header = read_header(import_ct2(synthetic_ct2, tmp_path, quantization="q8_0").path)
    assert header is not None
    assert (header.n_vocab, header.n_audio_ctx, header.n_audio_state, header.n_audio_head) == (
        51865,
        1500,
        64,
        2,
    )
    assert (header.n_text_ctx, header.n_text_head, header.n_audio_layer, header.n_mels) == (448, 2, 1, 80)
    assert header.ftype == 2007  # q8_0 (7) in ggml's second quantisation format


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_float32_and_int8_ct2_models_import_too(tiny_fixture: Path, tmp_path: Path, dtype: str) -> None:
    source = write_synthetic_ct2_model(tmp_path / "ct2", fixture_vocabulary(tiny_fixture), dtype=dtype)
    context = WhisperContext.load(import_ct2(source, tmp_path / "models").path)
    context.close()


@pytest.mark.parametrize("quantization", ["int8", "int8_float16", "bfloat16", "float32"])
def test_models_written_by_ctranslate2_itself_import_with_their_weights(
    synthetic_ct2: Path, tmp_path: Path, quantization: str
) -> None:
    pytest.importorskip("ctranslate2", reason="the reference writer is CTranslate2's own package")
    source = rewrite_with_ctranslate2(synthetic_ct2, tmp_path / "ct2", quantization)
    WhisperContext.load(import_ct2(source, tmp_path / "models").path).close()
    name = "decoder/layer_0/ffn/linear_0/weight"
    with CT2Model(synthetic_ct2 / "model.bin") as original, CT2Model(source / "model.bin") as rewritten:
        expected, restored = original.float32(name), rewritten.float32(name)
    # int8: half a step of each row's scale (amax / 127); bfloat16: its 8-bit significand.
    tolerance = np.abs(expected).max(axis=1, keepdims=True) / 127 * 0.51 if "int8" in quantization else 0
    assert (np.abs(restored - expected) <= tolerance + 2**-8 * np.abs(expected)).all()


def test_the_mel_filters_are_openai_whispers(tiny_fixture: Path) -> None:
    expected = fixture_mel_filters(tiny_fixture)
    np.testing.assert_allclose(mel_filters(80), expected, rtol=0, atol=1e-6)


def test_128_mel_filters_cover_the_same_band() -> None:
    filters = mel_filters(128)
    assert filters.shape == (128, 201)
    assert (filters.sum(axis=1) > 0).all() and filters[:, -1].max() == 0


def test_the_vocabulary_is_stored_as_whisper_cpp_stores_it(synthetic_ct2: Path, tiny_fixture: Path) -> None:
    assert read_vocabulary(synthetic_ct2) == fixture_vocabulary(tiny_fixture)


def test_the_file_is_named_for_its_size_language_and_quantisation(
    synthetic_ct2: Path, tmp_path: Path
) -> None:
    # The synthetic model is one layer deep, so it has no size name of its own.
    assert import_ct2(synthetic_ct2, tmp_path).path.name == "ggml-custom-1x64.bin"
    assert import_ct2(synthetic_ct2, tmp_path, quantization="q5_1").path.name == "ggml-custom-1x64-q5_1.bin"
    assert import_ct2(synthetic_ct2, tmp_path, name="mine").path.name == "ggml-mine.bin"


def _shape(audio_layers: int, text_layers: int, n_vocab: int, n_mels: int = 80) -> GgmlHeader:
    return GgmlHeader(n_vocab, 1500, 512, 8, audio_layers, 448, 512, 8, text_layers, n_mels, ftype=1)


@pytest.mark.parametrize(
    ("shape", "quantization", "name"),
    [
        (_shape(6, 6, 51864), "f16", "ggml-base.en"),
        (_shape(4, 4, 51865), "q5_1", "ggml-tiny-q5_1"),
        (_shape(32, 32, 51865), "q8_0", "ggml-large-q8_0"),
        (_shape(32, 32, 51866, n_mels=128), "f16", "ggml-large-v3"),
        (_shape(32, 4, 51866, n_mels=128), "q5_0", "ggml-large-v3-turbo-q5_0"),
    ],
)
def test_default_names_are_whisper_cpps(shape: GgmlHeader, quantization: str, name: str) -> None:
    assert default_name(shape, quantization) == name  # type: ignore[arg-type]


@pytest.mark.parametrize("layout", ["vocabulary.json", "vocabulary.txt", "tokenizer.json"])
def test_the_vocabulary_is_read_from_any_of_ctranslate2s_files(tmp_path: Path, layout: str) -> None:
    tokens = [n.to_bytes(2, "big") for n in range(50257)]  # every byte value, each token different
    spelled = [byte_level(token) for token in tokens] + ["<|endoftext|>"]
    if layout == "vocabulary.json":
        (tmp_path / layout).write_text(json.dumps(spelled))
    elif layout == "vocabulary.txt":
        (tmp_path / layout).write_text("\n".join(spelled))
    else:
        (tmp_path / layout).write_text(
            json.dumps({"model": {"vocab": {t: i for i, t in enumerate(spelled)}}})
        )
    assert read_vocabulary(tmp_path) == tokens


def test_the_sidecar_records_where_the_model_came_from(synthetic_ct2: Path, tmp_path: Path) -> None:
    imported = import_ct2(synthetic_ct2, tmp_path, quantization="q5_0")
    facts = json.loads(imported.sidecar.read_text())
    assert imported.sidecar.name == imported.path.name.removesuffix(".bin") + ".json"
    assert facts["source"] == str(synthetic_ct2.resolve()) and facts["source_format"] == "ctranslate2"
    assert facts["quantization"] == "q5_0" and facts["size_bytes"] == imported.path.stat().st_size
    assert len(facts["source_sha256"]) == 64 and facts["imported"]


def test_an_existing_model_is_kept_without_force(synthetic_ct2: Path, tmp_path: Path) -> None:
    first = import_ct2(synthetic_ct2, tmp_path).path
    before = first.stat().st_mtime_ns
    with pytest.raises(ConversionError, match="already exists"):
        import_ct2(synthetic_ct2, tmp_path)
    assert first.stat().st_mtime_ns == before
    import_ct2(synthetic_ct2, tmp_path, force=True)


# --- bad input ----------------------------------------------------------------------------------------


def test_a_path_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="not a directory"):
        import_ct2(tmp_path / "nowhere", tmp_path / "models")


def test_a_directory_without_model_bin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"no model\.bin"):
        import_ct2(tmp_path, tmp_path / "models")


def test_another_architecture_is_refused_by_name(tmp_path: Path) -> None:
    write_model_bin(tmp_path / "model.bin", {"x": np.zeros(2, np.float32)}, spec="TransformerSpec")
    with pytest.raises(ConversionError, match="unsupported architecture: TransformerSpec"):
        import_ct2(tmp_path, tmp_path / "models")
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("kept", [0.0, 0.001, 0.5, 0.999])
def test_a_truncated_model_bin_is_refused_and_nothing_is_written(
    synthetic_ct2: Path, tmp_path: Path, kept: float
) -> None:
    source = tmp_path / "ct2"
    source.mkdir()
    blob = (synthetic_ct2 / "model.bin").read_bytes()
    (source / "model.bin").write_bytes(blob[: int(len(blob) * kept)])
    (source / "vocabulary.txt").write_bytes((synthetic_ct2 / "vocabulary.txt").read_bytes())
    with pytest.raises(ConversionError, match="truncated"):
        import_ct2(source, tmp_path / "models")
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())


def test_a_model_missing_a_tensor_fails_midway_and_leaves_nothing(
    synthetic_ct2: Path, tiny_fixture: Path, tmp_path: Path
) -> None:
    source = write_synthetic_ct2_model(tmp_path / "ct2", fixture_vocabulary(tiny_fixture))
    variables = _read_variables(source / "model.bin")
    del variables["decoder/layer_0/ffn/linear_1/weight"]
    write_model_bin(source / "model.bin", variables)
    models = tmp_path / "models"
    with pytest.raises(ConversionError, match="decoder/layer_0/ffn/linear_1/weight"):
        import_ct2(source, models)
    assert list(models.iterdir()) == []


@pytest.mark.parametrize("name", ["../escape", "a/b"])
def test_a_name_that_is_not_one_plain_file_name_is_refused(
    synthetic_ct2: Path, tmp_path: Path, name: str
) -> None:
    with pytest.raises(ConversionError, match="not a model name"):
        import_ct2(synthetic_ct2, tmp_path / "models", name=name)
    assert not (tmp_path / "models").exists()


def test_a_shape_whisper_cpp_cannot_run_is_refused(tiny_fixture: Path, tmp_path: Path) -> None:
    source = write_synthetic_ct2_model(tmp_path / "ct2", fixture_vocabulary(tiny_fixture), heads=3)
    with pytest.raises(ConversionError, match=r"shape whisper\.cpp cannot run"):
        import_ct2(source, tmp_path / "models")


def test_a_model_closes_while_its_arrays_are_still_in_use(synthetic_ct2: Path) -> None:
    model = CT2Model(synthetic_ct2 / "model.bin")
    view = model.raw("encoder/conv1/bias")
    model.close()
    assert view.shape == (64,)


def test_an_unknown_model_bin_version_is_refused(tmp_path: Path) -> None:
    write_model_bin(tmp_path / "model.bin", {}, version=2)
    with pytest.raises(ConversionError, match="version 2"):
        import_ct2(tmp_path, tmp_path / "models")


def _read_variables(path: Path) -> dict[str, np.ndarray]:
    with CT2Model(path) as model:
        return {name: model.raw(name).copy() for name in model.variables}


# --- ggml's block formats -----------------------------------------------------------------------------


def dequantize(blob: bytes, kind: str, count: int) -> np.ndarray:
    """ggml-common.h's blocks read back: value = d * (q - 16) for q5_0, d * (q - 8) for q4_0, d * q + m for
    q5_1, d * q for q8_0."""
    blocks = count // BLOCK
    if kind == "q8_0":
        raw = np.frombuffer(blob, np.uint8).reshape(blocks, 34)
        d = raw[:, :2].copy().view("<f2").astype(np.float32)
        return (raw[:, 2:].view(np.int8) * d).reshape(-1)
    if kind == "q4_0":
        raw = np.frombuffer(blob, np.uint8).reshape(blocks, 18)
        d = raw[:, :2].copy().view("<f2").astype(np.float32)
        q = np.concatenate([raw[:, 2:] & 0x0F, raw[:, 2:] >> 4], axis=1).astype(np.int32)
        return ((q - 8) * d).reshape(-1)
    width = 22 if kind == "q5_0" else 24
    raw = np.frombuffer(blob, np.uint8).reshape(blocks, width)
    d = raw[:, :2].copy().view("<f2").astype(np.float32)
    high = raw[:, width - 20 : width - 16].copy().view("<u4")
    nibbles = raw[:, width - 16 :]
    low = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int32)
    fifth = ((high >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32)
    q = low | (fifth << 4)
    if kind == "q5_0":
        return ((q - 16) * d).reshape(-1)
    m = raw[:, 2:4].copy().view("<f2").astype(np.float32)
    return (q * d + m).reshape(-1)


HALF_EPS, HALF_TINY = 2.0**-11, 2.0**-25  # an f16 rounding: relative in range, absolute among subnormals


def error_bound(block: np.ndarray, kind: str) -> np.ndarray:
    """The most a value may move: half a step (a whole one at q5_0's and q4_0's clipped end), plus the
    scale's (and q5_1's minimum's) rounding to f16 times the largest quant."""
    if kind == "q8_0":
        step, steps, rounding = np.abs(block).max() / 127, 127, 0.5
    elif kind in ("q5_0", "q4_0"):
        levels = 16 if kind == "q5_0" else 8
        step, steps, rounding = np.abs(block).max() / levels, levels, 1.0
    else:
        step, steps, rounding = (block.max() - block.min()) / 31, 31, 0.5
    scale_error = steps * max(step * HALF_EPS, HALF_TINY)
    minimum_error = max(abs(block.min()) * HALF_EPS, HALF_TINY) if kind == "q5_1" else 0.0
    return rounding * step * (1 + 1e-5) + scale_error + minimum_error + 1e-7 * np.abs(block).max()


blocks_of_values = st.integers(1, 4).flatmap(
    lambda n: hnp.arrays(
        np.float32, n * BLOCK, elements=st.floats(-1e3, 1e3, allow_nan=False, width=32, allow_subnormal=False)
    )
)


@pytest.mark.parametrize("kind", ["q8_0", "q5_0", "q5_1", "q4_0"])
@settings(max_examples=200, deadline=None)
@given(values=blocks_of_values)
def test_dequantised_blocks_are_within_the_formats_error(kind: str, values: np.ndarray) -> None:
    restored = dequantize(quantize(values, kind), kind, values.size)  # type: ignore[arg-type]
    for block, back in zip(values.reshape(-1, BLOCK), restored.reshape(-1, BLOCK), strict=True):
        assert np.abs(block - back).max() <= error_bound(block, kind)


def _ggml_base() -> ctypes.CDLL | None:
    here = os.path.dirname(_pywhispercpp.__file__)
    for pattern in ("pywhispercpp.libs/libggml-base*.so*", "libggml-base*.so*"):
        for path in sorted(glob.glob(os.path.join(here, pattern))):
            library = ctypes.CDLL(path)
            library.ggml_quantize_chunk.restype = ctypes.c_size_t
            library.ggml_quantize_chunk.argtypes = [
                ctypes.c_int,
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_int64,
                ctypes.c_int64,
                ctypes.c_int64,
                ctypes.c_void_p,
            ]
            return library
    return None


GGML_TYPES = {
    "q8_0": 8,
    "q5_0": 6,
    "q5_1": 7,
    "q4_0": 2,
    "q4_K": 12,
    "q5_K": 13,
    "q6_K": 14,
    "iq4_nl": 20,
    "bf16": 30,
}
# Away from float32's subnormals, where ggml's C (an infinite inverse scale cast to an integer) is undefined.
ordinary_blocks = st.integers(1, 4).flatmap(
    lambda n: hnp.arrays(
        np.float32,
        n * BLOCK,
        elements=st.one_of(
            st.just(0.0), st.floats(2**-20, 1e3, width=32), st.floats(-1e3, -(2**-20), width=32)
        ),
    )
)


@pytest.mark.parametrize("kind", ["q8_0", "q5_0", "q5_1", "q4_0"])
@settings(max_examples=50, deadline=None)
@given(values=ordinary_blocks)
def test_blocks_are_byte_for_byte_what_ggml_writes(kind: str, values: np.ndarray) -> None:
    library = _ggml_base()
    if library is None:
        pytest.skip("ggml's library is not beside the pywhispercpp binding")
    source = np.ascontiguousarray(values.reshape(1, -1))
    out = ctypes.create_string_buffer(values.size * 2)
    size = library.ggml_quantize_chunk(
        GGML_TYPES[kind], source.ctypes.data, ctypes.addressof(out), 0, 1, values.size, None
    )
    assert quantize(values, kind) == out.raw[:size]  # type: ignore[arg-type]


class _TypeTraits(ctypes.Structure):
    """ggml.h's struct ggml_type_traits: its to_float reads a type's blocks back."""

    _fields_ = (
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64)),
        ("from_float_ref", ctypes.c_void_p),
    )


def ggml_dequantize(blob: bytes, kind: str, count: int) -> np.ndarray:
    library = load()
    library.ggml_get_type_traits.restype = ctypes.POINTER(_TypeTraits)
    library.ggml_get_type_traits.argtypes = [ctypes.c_int]
    traits = library.ggml_get_type_traits(GGML_TYPES[kind]).contents
    assert traits.type_name.decode() == kind
    values = np.empty(count, np.float32)
    traits.to_float(blob, values.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), count)
    return values


@pytest.mark.parametrize(("kind", "bound"), [("q4_K", 0.1), ("q5_K", 0.05), ("q6_K", 0.03), ("iq4_nl", 0.1)])
def test_ggml_quantised_rows_read_back_close_to_their_values(kind: str, bound: float) -> None:
    # Rows a million times apart in scale: one quantised with another's scales would read back far off.
    values = np.random.default_rng(0).standard_normal((3, 512)) * np.array([[1e-3], [1.0], [1e3]])
    matrix = values.astype(np.float32)
    restored = ggml_dequantize(quantize(matrix, kind), kind, matrix.size).reshape(matrix.shape)  # type: ignore[arg-type]
    relative_rms = np.sqrt(((restored - matrix) ** 2).mean(axis=1) / (matrix**2).mean(axis=1))
    assert (relative_rms < bound).all()


def test_no_type_ggml_quantises_needs_an_importance_matrix() -> None:
    # ggml aborts the process when one that needs it is quantised without.
    library = load()
    assert not any(library.ggml_quantize_requires_imatrix(GGML_TYPES[kind]) for kind in BY_GGML)


def test_f16_is_numpys_half_precision() -> None:
    values = np.linspace(-2, 2, 64, dtype=np.float32)
    assert quantize(values, "f16") == values.astype("<f2").tobytes()


# --- real weights -------------------------------------------------------------------------------------


def test_the_real_vocabulary_is_whisper_cpps(real_base_ct2: Path, tiny_fixture: Path) -> None:
    # Tokens are raw bytes, as in OpenAI's tokenizer and whisper.cpp's published models (the import is
    # their size to the byte, below); the test fixture's writer replaced 1476 partial UTF-8 ones by U+FFFD.
    ours = [token.decode("utf-8", "replace") for token in read_vocabulary(real_base_ct2)]
    assert ours == [token.decode("utf-8") for token in fixture_vocabulary(tiny_fixture)]


@pytest.mark.real_weights
@pytest.mark.parametrize("model", ["real_base_model", "real_base_q8_model"])
def test_real_base_transcribes_jfk_word_for_word(
    model: str, jfk_wav: Path, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(model)
    context = WhisperContext.load(path)
    try:
        transcript = context.transcribe(decode_audio(jfk_wav), DecodeOptions(language="en"), threads=2)
    finally:
        context.close()
    assert normalised(transcript.text) == normalised(JFK)


def test_the_real_f16_import_is_the_size_of_whisper_cpps_own_base(real_base_model: Path) -> None:
    # whisper.cpp's published ggml-base.bin holds the same tensors in the same types: 147,951,465 bytes.
    assert real_base_model.name == "ggml-base.bin"
    assert real_base_model.stat().st_size == 147_951_465
