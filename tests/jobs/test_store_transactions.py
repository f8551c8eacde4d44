"""How the store meets other database users: reads wait for no writer, and database calls have
threads of their own, so neither SQLite's writer lock nor busy decoding holds up a status poll."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from whisper_api.accounts.principal import OPEN
from whisper_api.composition import build_engine, build_jobs
from whisper_api.jobs.store import Store
from whisper_api.service.transcription import Limits, TranscriptionService
from whisper_api.settings import Settings


def _submit(store: Store) -> str:
    return store.submit(model="tiny", request={"options": {}}, formats=["json"]).id


@contextmanager
def _writer_lock(database: Path) -> Iterator[None]:
    """Another process's write transaction, holding SQLite's writer lock until the block ends."""
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE jobs SET progress = 0.5")  # written, not committed
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_status_read_goes_on_while_another_process_holds_the_sqlite_writer_lock(tmp_path: Path) -> None:
    database = tmp_path / "jobs.sqlite3"
    store = Store(f"sqlite:///{database}")
    store.create_tables()
    job_id = _submit(store)
    try:
        with _writer_lock(database):
            job = store.job(job_id)
            listed = store.list_jobs(limit=10)
            queued = store.queue_length()
    finally:
        store.close()
    assert job is not None and (job.status, job.progress) == ("queued", 0.0)  # the last committed state
    assert [item.id for item in listed.items] == [job_id] and queued == 1


def test_the_sqlite_queue_is_in_write_ahead_log_mode(tmp_path: Path) -> None:
    database = tmp_path / "jobs.sqlite3"
    store = Store(f"sqlite:///{database}")
    store.create_tables()
    store.close()
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_status_read_is_not_held_up_by_a_busy_default_thread_pool(
    database_url: str, models_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(models_dir=models_dir, data_dir=tmp_path, database_url=database_url)
    engine = build_engine(settings)
    jobs = build_jobs(settings, TranscriptionService(engine, engine.catalog, Limits(60, None)), runners=0)
    jobs.store.create_tables()
    job_id = _submit(jobs.store)
    decoding_may_end = threading.Event()

    async def scenario() -> str:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(1))
        # Decoding (or voice detection) takes the default pool's one thread and keeps it.
        decoding = loop.run_in_executor(None, decoding_may_end.wait)
        try:
            status = (await asyncio.wait_for(jobs.service.job(job_id, owner=OPEN), 60)).status
        finally:
            decoding_may_end.set()
            await decoding
            await engine.close()
        return status

    try:
        assert asyncio.run(scenario()) == "queued"
    finally:
        jobs.store.close()
