"""Jobs survive what kills processes: a server killed with SIGKILL (SQLite), and several workers on
several processes sharing one PostgreSQL queue, one of them killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import API_KEY, Server, start_server, stop_server
from tests.e2e.test_jobs import HEADERS, submit, wait_for
from tests.support import postgres
from tests.support.net import free_port

LEASE_SECONDS = 3


def _api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=HEADERS, timeout=30)


def start_worker(models_dir: Path, log_path: Path, flags: str) -> subprocess.Popen[bytes]:
    """`whisper-api worker`, once its runner has started."""
    command = [
        sys.executable,
        "-m",
        "whisper_api",
        "worker",
        "--models-dir",
        str(models_dir),
        "--log-format",
        "json",
    ]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("WHISPER_API_")}
    process = subprocess.Popen(
        [*command, *flags.split()], stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=environment
    )
    deadline = time.monotonic() + 60
    while "job_runner_started" not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"worker did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    return process


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def test_a_server_killed_outright_loses_no_accepted_job(
    models_dir: Path, tmp_path: Path, long_wav: Path, jfk_wav: Path
) -> None:
    # A lease far longer than the test: the restarted server must not need it to run out.
    flags = "--default-model mini.en --contexts 1 --threads 1 --job-lease-seconds 600"
    flags += f" --data-dir {tmp_path / 'data'}"
    first = start_server(models_dir, tmp_path / "first.log", flags, env={"WHISPER_API_API_KEYS": API_KEY})
    try:
        with _api(first) as api:
            running = submit(api, long_wav)["id"]
            queued = submit(api, jfk_wav)["id"]
            wait_for(api, running, {"running"})
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    second = start_server(models_dir, tmp_path / "second.log", flags, env={"WHISPER_API_API_KEYS": API_KEY})
    try:
        with _api(second) as api:
            interrupted = wait_for(api, running, timeout=180)
            waiting = wait_for(api, queued, timeout=60)
    finally:
        stop_server(second)
    assert (interrupted["status"], interrupted["attempts"]) == ("succeeded", 2)
    assert (waiting["status"], waiting["attempts"]) == ("succeeded", 1)
    # The restarted server saw the killed process was gone and took its job without waiting for the lease.
    assert "dead_runner_jobs_freed" in (tmp_path / "second.log").read_text()


@pytest.fixture
def shared_queue(models_dir: Path, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """An API server that only queues (--job-runners 0) on a fresh PostgreSQL database, and the
    flags workers need to share its queue and media."""
    if not postgres.available():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with postgres.running_postgres() as url:
        shared = f"--database-url {url} --media-dir {tmp_path / 'media'} --job-lease-seconds {LEASE_SECONDS}"
        api = start_server(
            models_dir,
            tmp_path / "api.log",
            f"--default-model mini.en --job-runners 0 {shared}",
            env={"WHISPER_API_API_KEYS": API_KEY},
        )
        try:
            yield api, f"--default-model mini.en --contexts 1 --threads 1 {shared}"
        finally:
            stop_server(api)


def test_workers_on_a_shared_postgresql_queue_run_each_job_once_and_take_over_a_dead_ones(
    shared_queue: tuple[Server, str], models_dir: Path, tmp_path: Path, jfk_wav: Path, very_long_wav: Path
) -> None:
    api_server, worker_flags = shared_queue
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    metrics_port = free_port()
    workers = [
        start_worker(models_dir, logs[0], f"{worker_flags} --metrics-port {metrics_port}"),
        start_worker(models_dir, logs[1], worker_flags),
    ]
    try:
        with _api(api_server) as api:
            quick = [submit(api, jfk_wav)["id"] for _ in range(6)]
            for job_id in quick:
                job = wait_for(api, job_id, timeout=120)
                assert (job["status"], job["attempts"]) == ("succeeded", 1)
            ran = [log.read_text().count('"job_started"') for log in logs]
            assert sum(ran) == 6 and min(ran) >= 1  # both workers took jobs; none ran twice
            scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            assert f'whisper_api_job_duration_seconds_count{{outcome="succeeded"}} {ran[0]}.0' in scraped

            long_job = submit(api, very_long_wav)["id"]
            wait_for(api, long_job, {"running"})
            victim = next(i for i, log in enumerate(logs) if long_job in log.read_text())
            _kill(workers[victim])
            killed_at = time.monotonic()
            survivor_log = logs[1 - victim]
            while f'"job": "{long_job}", "attempt": 2' not in survivor_log.read_text():
                assert time.monotonic() - killed_at < 30, "the dead worker's job was not taken over"
                time.sleep(0.1)
            taken_over_after = time.monotonic() - killed_at
            api.post(f"/v1/transcription-jobs/{long_job}/cancel")
    finally:
        for worker in workers:
            _kill(worker)
    assert taken_over_after <= LEASE_SECONDS + 2
    print(f"job taken over {taken_over_after:.2f} s after its worker was killed (lease {LEASE_SECONDS} s)")


def test_a_stopped_worker_hands_its_job_back_at_once(
    shared_queue: tuple[Server, str], models_dir: Path, tmp_path: Path, very_long_wav: Path
) -> None:
    api_server, worker_flags = shared_queue
    first = start_worker(models_dir, tmp_path / "first.log", worker_flags)
    try:
        with _api(api_server) as api:
            job_id = submit(api, very_long_wav)["id"]
            wait_for(api, job_id, {"running"})
            first.send_signal(signal.SIGTERM)
            first.wait(timeout=20)
            job = api.get(f"/v1/transcription-jobs/{job_id}").json()
            assert (job["status"], job["attempts"]) == ("queued", 0)
            second = start_worker(models_dir, tmp_path / "second.log", worker_flags)
            try:
                assert wait_for(api, job_id, {"running"}, timeout=20)["attempts"] == 1
                api.post(f"/v1/transcription-jobs/{job_id}/cancel")
            finally:
                _kill(second)
    finally:
        _kill(first)
