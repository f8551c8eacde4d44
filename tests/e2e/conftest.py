"""Real servers: `whisper-api serve` processes on 127.0.0.1, driven by real clients."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from tests.support.media import pcm_wav
from tests.support.net import free_port
from whisper_api.audio import SAMPLE_RATE, decode_audio

API_KEY = "sk-test-0123456789"
#: How long the trained-model server lets a live stream stay silent: short, so tests of it are quick.
LIVE_IDLE_SECONDS = 3


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def host(self) -> str:
        return httpx.URL(self.base_url).host

    @property
    def port(self) -> int:
        return httpx.URL(self.base_url).port or 80

    def client(self, api_key: str = API_KEY, **options: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key=api_key, max_retries=0, **options)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus sample's values over series matching `labels`."""
        total = 0.0
        for line in httpx.get(f"{self.base_url}/metrics").text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            series, _, value = line.rpartition(" ")
            if all(f'{key}="{wanted}"' in series for key, wanted in labels.items()):
                total += float(value)
        return total

    def log(self) -> str:
        return self.log_path.read_text()


def start_server(
    models_dir: Path, log_path: Path, flags: str = "", env: dict[str, str] | None = None
) -> Server:
    """`whisper-api serve` with `flags` (one string, split on whitespace), ready to serve."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "whisper_api",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--models-dir",
        str(models_dir),
        "--log-format",
        "json",
        *([] if "--data-dir" in flags else ["--data-dir", str(log_path.parent / "data")]),
        *flags.split(),
    ]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("WHISPER_API_")}
    environment.update(env or {})
    log_file = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=environment)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/ready", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server did not become ready:\n{server.log()}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="session")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service as a user runs it: two contexts, an API key, the English-only model as default."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    running = start_server(
        models_dir,
        log_path,
        "--default-model mini.en --contexts 2 --threads 1",
        env={"WHISPER_API_API_KEYS": API_KEY},
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def client(server: Server) -> openai.OpenAI:
    return server.client()


def _speech_server(models_dir: Path, log_dir: Path, default_model: str, flags: str = "") -> Iterator[Server]:
    """Two contexts, an API key, Silero VAD from `models_dir`, URL fetches from 127.0.0.1 allowed and
    a short live idle timeout: what the /v1/listen, chunking and language tests need."""
    running = start_server(
        models_dir,
        log_dir / "server.log",
        f"--default-model {default_model} --contexts 2 --threads 1 --url-fetch-allow 127.0.0.1"
        f" --live-idle-seconds {LIVE_IDLE_SECONDS} {flags}",
        env={"WHISPER_API_API_KEYS": API_KEY},
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def listen_server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """For protocol tests: the synthetic multilingual model (real compute, meaningless words)."""
    yield from _speech_server(models_dir, tmp_path_factory.mktemp("listen-server"), "mini")


@pytest.fixture(scope="session")
def trained_server(
    trained_model: Path, vad_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The model trained on synthetic speech as the default: for tests of the words themselves."""
    directory = tmp_path_factory.mktemp("trained-models")
    (directory / trained_model.name).symlink_to(trained_model)
    (directory / vad_model.name).symlink_to(vad_model)
    # ggml's CPU flash attention is 2.7x slower than plain attention for this model's 42-wide heads
    # (0.76 s per clip without it, 2.1 s with it, measured).
    # The alias is seed 002's model name, which its examples send.
    yield from _speech_server(
        directory,
        tmp_path_factory.mktemp("trained-server"),
        "tiny-synth",
        "--no-flash-attn --model-alias cpu-lite=tiny-synth",
    )


@pytest.fixture(scope="session")
def long_wav(jfk_wav: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """66 s of speech (jfk six times): three of whisper's 30 s windows."""
    return _write(tmp_path_factory.mktemp("long") / "long.wav", np.tile(decode_audio(jfk_wav), 6))


@pytest.fixture(scope="session")
def very_long_wav(jfk_wav: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5½ minutes of speech: long enough to still be running when a test looks."""
    return _write(tmp_path_factory.mktemp("very-long") / "very-long.wav", np.tile(decode_audio(jfk_wav), 30))


def _write(path: Path, samples: np.ndarray) -> Path:
    path.write_bytes(pcm_wav(samples[None], SAMPLE_RATE))
    return path
