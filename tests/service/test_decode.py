"""Decoding an upload: the engine is told a run is coming, so runs starting meanwhile share the cores."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

import whisper_api.service.transcription as transcription
from whisper_api.engine.catalog import ModelCatalog
from whisper_api.engine.engine import Engine, EngineConfig
from whisper_api.service.transcription import Limits, TranscriptionService


def test_a_run_starting_while_an_upload_is_decoded_leaves_that_request_a_share_of_the_cores(
    models_dir: Path, jfk_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = EngineConfig(contexts=2, threads=0, max_queue=4, cores=2)
    engine = Engine(ModelCatalog(models_dir, "mini.en"), config, "mini.en")
    service = TranscriptionService(engine, engine.catalog, Limits(max_audio_seconds=600, timeout=None))
    widths: list[int] = []

    def decode_audio(_upload: bytes, **_limits: object) -> np.ndarray:
        # What a run from another request would be given if it started now, while this one decodes.
        lease = engine.cores.take((0.0, 0), None, crowd=lambda: 0, abandon=lambda: False)
        assert lease is not None
        widths.append(lease.width)
        engine.cores.give_back(lease)
        return np.zeros(16_000, np.float32)

    monkeypatch.setattr(transcription, "decode_audio", decode_audio)
    asyncio.run(service.decode(jfk_wav.read_bytes()))
    assert widths == [1]
