"""Which models get whisper.cpp's DTW word timing: OpenAI's shapes, each with its own alignment heads."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisper_api.binding import declarations as h
from whisper_api.engine.catalog import ModelFile
from whisper_api.engine.whisper import alignment_heads


def shaped(audio_state: int, text_layers: int, *, multilingual: bool, mels: int = 80) -> ModelFile:
    return ModelFile(
        id="m",
        path=Path("m.bin"),
        size=0,
        created=0,
        multilingual=multilingual,
        n_vocab=51865 if multilingual else 51864,
        n_audio_state=audio_state,
        n_audio_layer=text_layers,
        n_text_state=audio_state,
        n_text_layer=text_layers,
        n_mels=mels,
        ftype=1,
    )


@pytest.mark.parametrize(
    ("model", "heads"),
    [
        (shaped(384, 4, multilingual=False), h.AHEADS_TINY_EN),
        (shaped(512, 6, multilingual=True), h.AHEADS_BASE),
        (shaped(512, 6, multilingual=False), h.AHEADS_BASE_EN),
        (shaped(1280, 32, multilingual=True, mels=128), h.AHEADS_LARGE_V3),
        (shaped(1280, 4, multilingual=True, mels=128), h.AHEADS_LARGE_V3_TURBO),
    ],
)
def test_an_openai_shaped_model_gets_its_sizes_alignment_heads(model: ModelFile, heads: int) -> None:
    assert alignment_heads(model) == heads


def test_a_model_of_another_shape_has_no_known_alignment_heads() -> None:
    # The model trained here: 168 wide, 3 layers.
    assert alignment_heads(shaped(168, 3, multilingual=True)) is None
