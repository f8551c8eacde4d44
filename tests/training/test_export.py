"""The exporter writes files whisper.cpp loads: right header, tensor names, shapes and types."""

from __future__ import annotations

import struct
from pathlib import Path

import _pywhispercpp as binding
import numpy as np
import pytest
import torch

from tests.support.synthetic_model import Dimensions as SyntheticDimensions
from tests.support.synthetic_model import write_synthetic_model
from tests.training.fixtures import SMALL
from training.export import export_ggml
from training.ggml_header import read_header
from training.model import Dimensions, Whisper
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import WhisperContext


def _tensor_table(path: Path) -> dict[str, tuple[tuple[int, ...], int]]:
    """name → (ggml shape, ggml type) for every tensor record after the header."""
    blob = path.read_bytes()
    header = read_header(path)
    offset = len(header.pack())
    table = {}
    while offset < len(blob):
        n_dims, name_length, ggml_type = struct.unpack_from("<iii", blob, offset)
        offset += 12
        shape = struct.unpack_from(f"<{n_dims}i", blob, offset)
        offset += 4 * n_dims
        name = blob[offset : offset + name_length].decode()
        offset += name_length + int(np.prod(shape)) * (2 if ggml_type == 1 else 4)
        table[name] = (tuple(shape), ggml_type)
    return table


def test_tensors_match_the_synthetic_models_whisper_cpp_already_loads(
    small_model_file: Path, header_file: Path, tmp_path: Path
) -> None:
    w, h = SMALL.width, SMALL.heads
    dims = SyntheticDimensions(w, h, SMALL.encoder_layers, w, h, SMALL.decoder_layers)
    synthetic = write_synthetic_model(header_file, tmp_path / "synthetic.bin", dims)
    assert _tensor_table(small_model_file) == _tensor_table(synthetic)
    assert read_header(small_model_file).pack() == read_header(synthetic).pack()


def test_exported_model_loads_with_our_dimensions(small_model_file: Path) -> None:
    context = binding.whisper_init_from_file_with_params(
        str(small_model_file), binding.whisper_context_default_params()
    )
    try:
        assert binding.whisper_model_n_audio_state(context) == SMALL.width
        assert binding.whisper_model_n_audio_head(context) == SMALL.heads
        assert binding.whisper_model_n_text_layer(context) == SMALL.decoder_layers
        assert binding.whisper_model_n_vocab(context) == 51865
        assert binding.whisper_is_multilingual(context)
    finally:
        binding.whisper_free(context)


def test_exported_model_transcribes_through_the_engine(
    small_model_file: Path, jfk_samples: np.ndarray
) -> None:
    context = WhisperContext.load(small_model_file)
    try:
        transcript = context.transcribe(
            jfk_samples, DecodeOptions(language="en", temperature_increment_on_fallback=0.0), threads=2
        )
    finally:
        context.close()
    assert transcript.language.code == "en"
    assert transcript.duration == len(jfk_samples) / 16_000


def test_the_default_model_file_stays_under_25_mb(header_file: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = export_ggml(Whisper(Dimensions()), tmp_path / "default.bin", header_file)
    assert path.stat().st_size < 25_000_000


def test_a_two_layer_decoder_is_refused_since_whisper_cpp_would_drop_its_timestamps() -> None:
    # whisper_full treats n_text_layer == 2 with this vocabulary as distil-whisper: no timestamps.
    with pytest.raises(ValueError, match="without timestamps"):
        Dimensions(decoder_layers=2)
