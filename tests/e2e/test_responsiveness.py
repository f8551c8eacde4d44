"""The server stays responsive while whisper.cpp computes: every call into it releases the GIL.

Language detection used to run with the GIL held, freezing the whole server for its length (seconds on a
tiny-sized model); most OpenAI-SDK requests to a multilingual model omit `language`, so each of them did.
The model here has tiny's dimensions (real tiny compute, random text), multilingual, so every request
without `language` runs a full 30 s window through the encoder to detect it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import API_KEY, Server, start_server, stop_server
from tests.support.media import pcm_wav
from tests.support.synthetic_model import TINY, write_synthetic_model
from tests.support.waiting import wait_until
from whisper_api.audio import SAMPLE_RATE, decode_audio

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
#: The issue's bound: a liveness probe every 50 ms, each answered within 0.2 s.
PROBE_INTERVAL = 0.05
PROBE_LIMIT = 0.2
#: Synthetic weights never pass whisper's fallback checks; without this each window decodes 6 times.
NO_FALLBACK = {"temperature_increment_on_fallback": "0"}
#: How often a job runner renews its lease (and so notices a cancel) with --job-lease-seconds 3.
HEARTBEAT = 1.0


@pytest.fixture(scope="module")
def tiny_server(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("tiny-multilingual")
    header = fixtures_dir / "models" / "for-tests-ggml-tiny.bin"
    write_synthetic_model(header, directory / "ggml-tiny.bin", TINY)
    running = start_server(
        directory,
        directory / "server.log",
        "--default-model tiny --contexts 2 --threads 1 --job-lease-seconds 3",
        env={"WHISPER_API_API_KEYS": API_KEY},
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def clip(jfk_wav: Path) -> bytes:
    """3 s of speech: detection reads a whole 30 s window whatever the length, decoding only these."""
    return pcm_wav(decode_audio(jfk_wav)[None, : 3 * SAMPLE_RATE], SAMPLE_RATE)


def probe_health(server: Server, stop: threading.Event) -> list[float]:
    """Seconds each GET /health took, asked every PROBE_INTERVAL on one keep-alive connection until `stop`."""
    latencies = []
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get("/health").raise_for_status()
            latencies.append(time.perf_counter() - started)
            stop.wait(PROBE_INTERVAL)
    return latencies


def detect(server: Server, clip: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/audio/language",
        headers=HEADERS,
        files={"file": ("clip.wav", clip, "audio/wav")},
        timeout=120,
    )


def test_health_answers_within_200_ms_throughout_a_detection_and_a_transcription(
    tiny_server: Server, clip: bytes
) -> None:
    stop = threading.Event()
    with ThreadPoolExecutor(1) as probes:
        latencies = probes.submit(probe_health, tiny_server, stop)
        try:
            detected = detect(tiny_server, clip)
            transcribed = httpx.post(
                f"{tiny_server.base_url}/v1/audio/transcriptions",
                headers=HEADERS,
                files={"file": ("clip.wav", clip, "audio/wav")},
                data={"model": "tiny", "response_format": "verbose_json", **NO_FALLBACK},
                timeout=120,
            )
        finally:
            stop.set()
        seen = latencies.result()
    assert detected.status_code == 200, detected.text
    assert transcribed.status_code == 200, transcribed.text
    assert transcribed.json()["language"]  # detected: the request named none
    assert len(seen) >= 5
    assert max(seen) < PROBE_LIMIT, f"slowest of {len(seen)} probes: {max(seen):.3f} s"


def test_a_job_cancelled_during_detection_ends_within_that_detection_and_a_heartbeat(
    tiny_server: Server, clip: bytes
) -> None:
    started = time.perf_counter()
    assert detect(tiny_server, clip).status_code == 200
    detection = time.perf_counter() - started
    with httpx.Client(base_url=tiny_server.base_url, headers=HEADERS, timeout=30) as api:
        job = api.post(
            "/v1/transcription-jobs", files={"file": ("clip.wav", clip, "audio/wav")}, data=NO_FALLBACK
        ).json()
        wait_until(
            lambda: api.get(f"/v1/transcription-jobs/{job['id']}").json()["status"] == "running",
            what="the job starting",
            interval=0.02,
        )
        started = time.perf_counter()
        cancelled = api.post(f"/v1/transcription-jobs/{job['id']}/cancel")
        answered = time.perf_counter() - started
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        wait_until(lambda: tiny_server.metric("whisper_api_in_flight") == 0, what="the transcription ending")
        ended = time.perf_counter() - started
        assert api.get(f"/v1/transcription-jobs/{job['id']}").json()["status"] == "cancelled"
    # The runner sees the cancel at its next heartbeat and whisper.cpp stops at its next abort check, which
    # comes before each window's encoder and after it: the detection under way finishes and at most one
    # encoder pass (as long as a detection) starts before the heartbeat lands. With the GIL held through
    # detection, the heartbeat waited for it, and the cancel itself did.
    assert answered < PROBE_LIMIT
    assert ended < 2 * detection + HEARTBEAT, f"ended {ended:.2f} s on; one detection: {detection:.2f} s"
