"""Starting without a model, graceful shutdown, and the command line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port, start_server, stop_server
from tests.e2e.test_limits import Upload, wait_for


def test_sigterm_lets_the_request_in_flight_finish(models_dir: Path, tmp_path: Path, long_wav: Path) -> None:
    server = start_server(models_dir, tmp_path / "log", "--default-model mini.en --contexts 1")
    upload = Upload(server, long_wav)
    upload.start()
    wait_for(lambda: server.metric("whisper_api_in_flight") == 1)
    server.process.send_signal(signal.SIGTERM)
    upload.join(timeout=60)
    assert upload.status == 200
    # uvicorn re-raises the signal once shutdown is complete, as a process manager expects.
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert '"event": "stopped"' in server.log()


def test_server_starts_without_its_default_model_and_reports_not_ready(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "log").open("wb")
    unreachable = "http://127.0.0.1:9/models"  # nothing listens on the discard port
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "whisper_api",
            "serve",
            "--port",
            str(port),
            "--models-dir",
            str(tmp_path),
            "--default-model",
            "tiny.en",
            "--model-base-url",
            unreachable,
            "--log-format",
            "json",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url, "/health"))
        wait_for(lambda: "could not reach" in httpx.get(f"{url}/ready").json().get("detail", ""))
        assert httpx.get(f"{url}/ready").status_code == 503
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)


def _answers(url: str, path: str) -> bool:
    try:
        return httpx.get(url + path, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whisper_api", *args], capture_output=True, text=True, timeout=120
    )


def transcribe_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The local CLI with one decoding pass per window (synthetic models never pass whisper's checks)."""
    return run_cli("transcribe", "--temperature-increment-on-fallback", "0", *args)


def test_cli_transcribes_a_file_locally_as_srt(models_dir: Path, jfk_mp3: Path) -> None:
    result = transcribe_cli(
        str(jfk_mp3),
        "--models-dir",
        str(models_dir),
        "--default-model",
        "mini.en",
        "--format",
        "srt",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1\n00:00:")


def test_cli_transcribe_writes_verbose_json_with_words(models_dir: Path, jfk_wav: Path) -> None:
    result = transcribe_cli(
        str(jfk_wav),
        "--models-dir",
        str(models_dir),
        "--model",
        "mini",
        "--language",
        "en",
        "--format",
        "verbose_json",
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["language"] == "english" and body["words"]


def test_cli_transcribe_reports_an_undecodable_file(models_dir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00junk" * 100)
    result = transcribe_cli(str(junk), "--models-dir", str(models_dir), "--default-model", "mini.en")
    assert result.returncode == 1
    assert "could not be decoded" in result.stderr and "Traceback" not in result.stderr


def test_cli_lists_models(models_dir: Path) -> None:
    result = run_cli("models", "list", "--models-dir", str(models_dir))
    assert result.returncode == 0
    assert "ggml-mini.en" in result.stdout and "english-only" in result.stdout


def test_cli_settings_come_from_the_environment_too(models_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "whisper_api", "models", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"WHISPER_API_MODELS_DIR": str(models_dir), "PATH": ""},
    )
    assert "ggml-mini" in result.stdout


@pytest.mark.parametrize("flag", ["--port", "--max-queue"])
def test_cli_rejects_an_invalid_setting_with_a_message(flag: str) -> None:
    result = run_cli("serve", flag, "-5")
    assert result.returncode != 0
    assert "invalid setting" in result.stderr or "error" in result.stderr


def test_cors_origins_let_a_browser_app_call_the_api(models_dir: Path, tmp_path: Path) -> None:
    server = start_server(
        models_dir, tmp_path / "log", "--default-model mini.en --cors-origins https://app.example"
    )
    try:
        preflight = httpx.options(
            f"{server.base_url}/v1/audio/transcriptions",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.get(f"{server.base_url}/v1/models", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        stop_server(server)


def test_an_offline_start_without_the_vad_model_says_how_to_run_without_it(
    models_dir: Path, tmp_path: Path
) -> None:
    offline_models = tmp_path / "models"
    offline_models.mkdir()
    (offline_models / "ggml-mini.en.bin").symlink_to(models_dir / "ggml-mini.en.bin")
    server = start_server(
        offline_models,
        tmp_path / "log",
        "--default-model mini.en --model-base-url http://127.0.0.1:9/models",
    )
    try:
        wait_for(lambda: "vad_model_unavailable" in server.log())
        warning = next(line for line in server.log().splitlines() if "vad_model_unavailable" in line)
        assert "--vad-model ''" in json.loads(warning)["silence_with"]
    finally:
        stop_server(server)
