"""Asynchronous jobs: jobs per minute through one machine, and how soon a dead worker's job runs again.

Throughput: N clips of jfk.wav (11 s) through one server (contexts=2 x threads=1, the 2-core
default; synthetic tiny.en, one decoding pass), first as synchronous requests from 2 client threads
(both contexts busy: the machine's ceiling, the baseline), then as N jobs submitted at once and run
by the server's own runner (--job-runners 2), timed from the first submission to the last job
finished. The ratio says what queueing through the database costs against that ceiling.

Takeover: an API server that only queues (--job-runners 0) and two `whisper-api worker` processes
sharing its SQLite database (or --database-url), with the default 30 s lease unless --lease says
otherwise; a 66 s job starts, the worker running it is killed (SIGKILL), and the time until the
other worker starts the job again is measured. It is bounded by the lease: a silent worker is only
known dead when its lease runs out.

    python -m bench.jobs [--quick] [--jobs 24] [--lease 30] [--database-url URL]
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.harness import (
    BENCH_MODELS,
    JFK_WAV,
    WhisperApiServer,
    _whisper_api_executable,
    bench_audio,
    bench_model,
    bench_parser,
    long_clip,
    wait_until_quiet,
)

FIELDS = {"temperature": "0", "temperature_increment_on_fallback": "0"}


def sync_throughput(server: WhisperApiServer, transcribe, count: int) -> float:
    """Requests per minute from 2 client threads."""
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: transcribe(JFK_WAV), range(count)))
    return count / (time.perf_counter() - started) * 60


def job_throughput(base_url: str, count: int) -> float:
    """Jobs per minute: all submitted at once, timed until the last one finished.

    Progress is read from the job list four times a second: polling each job instead would put
    hundreds of requests a second on the same two cores the jobs run on.
    """
    audio = JFK_WAV.read_bytes()
    with httpx.Client(base_url=base_url, timeout=60) as client:
        started = time.perf_counter()
        for _ in range(count):
            client.post("/v1/transcription-jobs", data=FIELDS, files={"file": ("jfk.wav", audio)})
        while True:
            unfinished = [
                len(
                    client.get("/v1/transcription-jobs", params={"status": status, "limit": 100}).json()[
                        "data"
                    ]
                )
                for status in ("queued", "running")
            ]
            if not any(unfinished):
                break
            time.sleep(0.25)
        finished = time.perf_counter() - started
        failed = client.get("/v1/transcription-jobs", params={"status": "failed"}).json()["data"]
        if failed:
            raise RuntimeError(f"{len(failed)} jobs failed: {failed[0]['error']}")
        return count / finished * 60


def _worker(flags: list[str], log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [_whisper_api_executable(), "worker", *flags], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while "job_runner_started" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text())
        time.sleep(0.1)
    return process


def takeover_seconds(model_id: str, lease: float, database_url: str | None, directory: Path) -> float:
    shared = ["--models-dir", str(BENCH_MODELS), "--default-model", model_id, "--job-lease-seconds",
              str(lease), "--data-dir", str(directory), "--log-format", "json"]  # fmt: skip
    if database_url:
        shared += ["--database-url", database_url]
    api = WhisperApiServer(
        BENCH_MODELS, model_id, contexts=1, threads=1, extra_args=[*shared, "--job-runners", "0"]
    )
    long_job = bench_audio("66s.wav", lambda: long_clip(66.0))
    with api:
        logs = [directory / "worker-a.log", directory / "worker-b.log"]
        workers = [_worker([*shared, "--contexts", "1", "--threads", "1"], log) for log in logs]
        try:
            with httpx.Client(base_url=api.base_url, timeout=60) as client:
                job_id = client.post(
                    "/v1/transcription-jobs", data=FIELDS, files={"file": ("66s.wav", long_job.read_bytes())}
                ).json()["id"]
                while client.get(f"/v1/transcription-jobs/{job_id}").json()["status"] != "running":
                    time.sleep(0.05)
                victim = next(i for i, log in enumerate(logs) if job_id in log.read_text())
                workers[victim].kill()
                killed = time.perf_counter()
                started_again = re.compile(rf'"job": "{job_id}", "attempt": 2')
                while not started_again.search(logs[1 - victim].read_text()):
                    time.sleep(0.02)
                elapsed = time.perf_counter() - killed
                client.post(f"/v1/transcription-jobs/{job_id}/cancel")
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
    return elapsed


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--jobs", type=int, default=24, help="clips per throughput run")
    parser.add_argument("--lease", type=float, default=30.0, help="job lease seconds for the takeover run")
    parser.add_argument("--database-url", default=None, help="share a PostgreSQL queue instead of SQLite")
    args = parser.parse_args()
    count = 6 if args.quick else args.jobs
    bench_model(args.model)
    print(f"machine: {wait_until_quiet()}")
    with tempfile.TemporaryDirectory() as scratch:
        server = WhisperApiServer(
            BENCH_MODELS, args.model, contexts=2, threads=1,
            extra_args=["--job-runners", "2", "--data-dir", scratch],
        )  # fmt: skip
        with server as transcribe:
            transcribe(JFK_WAV)  # warm-up
            sync = sync_throughput(server, transcribe, count)
            jobs = job_throughput(server.base_url, count)
        print(f"{count} x jfk.wav (11 s), {args.model}, contexts=2 x threads=1")
        print(f"  synchronous, 2 clients : {sync:6.1f} per minute (baseline)")
        print(f"  jobs, 2 runners        : {jobs:6.1f} per minute ({jobs / sync:.2f}x)")
        lease = 5.0 if args.quick else args.lease
        seconds = takeover_seconds(args.model, lease, args.database_url, Path(scratch))
        print(f"worker killed mid-job -> job running again after {seconds:.1f} s (lease {lease:g} s)")


if __name__ == "__main__":
    main()
