"""Jobs and files, durable in one SQL database: SQLite by default, PostgreSQL to share across machines.

SQLAlchemy Core speaks both dialects; the queue is the jobs table. A worker claims the oldest
claimable job with one `UPDATE ... RETURNING` whose subquery locks the row `FOR UPDATE SKIP LOCKED`
on PostgreSQL (concurrent workers neither wait for nor take the same row); SQLite runs the one
statement under its single-writer lock. A claim is a lease: the worker renews it while the job runs,
and a job whose lease ran out (its worker died) is claimable again, at most `max_attempts` times in
all. Every write a worker makes names its lease (worker id and attempt) and needs the job still
running, so a worker that lost its job (cancelled, or taken over after a stall) cannot write over it:
a job ends exactly once, and cancelling races completing fairly (whichever commits first wins).
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from whisper_api.accounts.principal import OPERATOR_ID
from whisper_api.errors import ConflictError, TooLargeError

T = TypeVar("T")
S = TypeVar("S", bound=sa.Select[Any])

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
CallbackState = Literal["none", "pending", "delivered", "failed"]

#: Every table of the service's database (accounts/store.py adds its own); the schema itself is made
#: and upgraded by the Alembic migrations in whisper_api/migrations, which must match it.
metadata = sa.MetaData()

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    #: Files are deduplicated per owner: one user's upload never reveals that another has the same bytes.
    sa.Column("owner_id", sa.String(40), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(127), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("owner_id", "sha256", name="files_owner_sha256"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("owner_id", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("model", sa.String(255)),
    #: The decoding request as JSON (service-level options), and the formats the caller wants.
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("formats", sa.JSON, nullable=False),
    sa.Column("file_id", sa.String(40), sa.ForeignKey("files.id")),
    sa.Column("source_url", sa.Text),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires_at", sa.Float),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    #: The one stored result: the engine's Transcript as JSON; every format is rendered from it.
    sa.Column("result", sa.LargeBinary),
    sa.Column("callback_url", sa.Text),
    sa.Column("callback_state", sa.String(16), nullable=False, default="none"),
    sa.Column("callback_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("callback_next_at", sa.Float),
    sa.Column("callback_error", sa.Text),
    sa.Index("jobs_claim", "status", "created_at"),
    sa.Index("jobs_callbacks", "callback_state", "callback_next_at"),
    sa.Index("jobs_owner", "owner_id", "id"),
)


class Conflict(ConflictError):
    """The change contradicts the record's state (cancel a finished job, delete a file in use)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code)


class StorageQuotaExceeded(TooLargeError):
    """The owner's files would take more than their storage quota."""

    param = "file"
    code = "storage_quota_exceeded"

    def __init__(self, quota_bytes: int, used_bytes: int, adding_bytes: int) -> None:
        super().__init__(
            f"Storing {_size(adding_bytes)} more would exceed your storage quota of {_size(quota_bytes)}: "
            f"your files take {_size(used_bytes)}. Delete files you no longer need to free space."
        )


@dataclass(frozen=True, slots=True)
class NewFile:
    """An upload whose content is stored, as add_files records it."""

    sha256: str
    filename: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    owner_id: str
    sha256: str
    filename: str
    content_type: str
    size_bytes: int
    created_at: float


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    owner_id: str
    status: JobStatus
    created_at: float
    started_at: float | None
    finished_at: float | None
    model: str | None
    request: dict[str, Any]
    formats: tuple[str, ...]
    file_id: str | None
    source_url: str | None
    progress: float
    attempts: int
    lease_owner: str | None
    error_code: str | None
    error_message: str | None
    has_result: bool
    callback_url: str | None
    callback_state: CallbackState
    callback_attempts: int
    callback_error: str | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's hold on a running job; every write the worker makes checks it still holds it."""

    job_id: str
    owner: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Page:
    items: tuple[Any, ...]
    has_more: bool


#: Threads (and pooled connections) for database calls: a few, since each call is short, but enough
#: that a status read need not queue behind the writers of one process (a claim, a renewal per
#: running job, a callback claim), which may wait seconds for another process's writer lock.
_DB_THREADS = 8
#: PostgreSQL advisory locks (pg_advisory_xact_lock's first key) that serialise one owner's file
#: additions across processes, so two uploads at once cannot both fit in the room left for one.
_OWNER_FILES_LOCKS = 8271902
#: The execution option that makes a SQLite transaction begin IMMEDIATE (see Store._writing).
_IMMEDIATE = "whisper_api_begin_immediate"

_id_lock = threading.Lock()
_last_id_tick = 0


def new_id(prefix: str) -> str:
    """Time-ordered (a millisecond clock, then randomness), so ids sort by creation like UUIDv7;
    within one process the clock part never repeats, so ids made in the same millisecond sort too."""
    global _last_id_tick
    with _id_lock:
        _last_id_tick = max(int(time.time() * 1000), _last_id_tick + 1)
        tick = _last_id_tick
    return f"{prefix}{tick:012x}{secrets.token_hex(8)}"


#: A job's columns as JobRecord reads them: everything but the result itself, and whether there is one.
_JOB_FIELDS = (
    *(column for column in jobs.c if column.name != "result"),
    jobs.c.result.is_not(None).label("has_result"),
)


def _job(row: sa.Row) -> JobRecord:
    values = row._mapping
    fields = {name: values[name] for name in JobRecord.__slots__}
    fields.update(formats=tuple(values["formats"]), has_result=bool(values["has_result"]))
    return JobRecord(**fields)


def _file(row: sa.Row) -> FileRecord:
    return FileRecord(**row._mapping)


class Store:
    """The jobs and files tables behind one SQLAlchemy engine (thread-safe; calls block)."""

    def __init__(self, url: str, *, max_attempts: int = 3) -> None:
        self.url = url
        self.max_attempts = max_attempts
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self._engine = sa.create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=_DB_THREADS
            )
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
            sa.event.listen(self._engine, "begin", _sqlite_begin)
        else:
            self._engine = sa.create_engine(url, pool_pre_ping=True, pool_size=_DB_THREADS)
        self._executor = ThreadPoolExecutor(_DB_THREADS, thread_name_prefix="jobs-db")
        self._select_job = sa.select(*_JOB_FIELDS)

    def create_tables(self) -> None:
        """Create the schema, or upgrade it to this version's (every process may call this at start)."""
        from whisper_api.migrations import upgrade

        with self.writing() as connection:
            if connection.dialect.name == "postgresql":
                # Serialise concurrent starts: two processes must not both run a migration.
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(8271901)"))
            upgrade(connection)

    def close(self) -> None:
        self._executor.shutdown()
        self._engine.dispose()

    async def call(self, method: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`method(*args, **kwargs)` on the store's own threads, awaited: a call waiting for the
        database (SQLite's writer lock, a slow server) holds up neither the event loop nor the default
        thread pool that audio decoding and voice detection run on, and is not held up by them."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(method, *args, **kwargs)
        )

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction: on SQLite a deferred one, which waits for no writer (WAL)."""
        with self._engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction that writes: on SQLite it takes the writer lock as it begins (IMMEDIATE), so
        one that reads and then writes (claim a job, delete a file unless a job needs it) is atomic,
        and waits for the lock (busy timeout) instead of failing when another writer got there
        between its two steps."""
        with self._engine.connect().execution_options(**{_IMMEDIATE: True}) as connection, connection.begin():
            yield connection

    # -- files ---------------------------------------------------------------------------------

    def add_file(
        self, sha256: str, filename: str, content_type: str, size_bytes: int, *, owner_id: str = OPERATOR_ID
    ) -> tuple[FileRecord, bool]:
        """The owner's file with this content, added now, or found (True) from their earlier upload."""
        [added] = self.add_files([NewFile(sha256, filename, content_type, size_bytes)], owner_id=owner_id)
        return added

    def add_files(
        self, new: Sequence[NewFile], *, owner_id: str = OPERATOR_ID, quota_bytes: int = 0
    ) -> list[tuple[FileRecord, bool]]:
        """Each file, added now or found (True) among the owner's earlier uploads: all of them in one
        transaction, or none (StorageQuotaExceeded) if what is new would take the owner's files past
        `quota_bytes` (0: no limit)."""
        added: list[tuple[FileRecord, bool]] = []
        with self.writing() as connection:
            _lock_owner_files(connection, owner_id)
            held = _held_files(connection, owner_id, new)
            _check_room(connection, owner_id, new, held, quota_bytes)
            for item in new:
                if item.sha256 in held:
                    added.append((held[item.sha256], True))
                    continue
                record = FileRecord(
                    new_id("file-"),
                    owner_id,
                    item.sha256,
                    item.filename,
                    item.content_type,
                    item.size_bytes,
                    time.time(),
                )
                connection.execute(files.insert().values(**_as_values(record)))
                held[item.sha256] = record
                added.append((record, False))
        return added

    def check_room(self, new: Sequence[NewFile], *, owner_id: str, quota_bytes: int) -> None:
        """StorageQuotaExceeded if adding `new` now would take the owner past `quota_bytes` (0: no limit);
        a check before the bytes are stored, which add_files makes again as it adds them."""
        if not quota_bytes:
            return
        with self.reading() as connection:
            _check_room(connection, owner_id, new, _held_files(connection, owner_id, new), quota_bytes)

    def storage_used(self, owner_id: str) -> int:
        """Bytes of the owner's files, each counted in full even where its content is shared."""
        with self.reading() as connection:
            return _storage_used(connection, owner_id)

    def file(self, file_id: str, *, owner: str | None = None) -> FileRecord | None:
        """The file, if it exists and `owner` (None: anyone) owns it."""
        with self.reading() as connection:
            row = connection.execute(
                _owned(sa.select(files).where(files.c.id == file_id), files, owner)
            ).first()
        return None if row is None else _file(row)

    def list_files(
        self, *, limit: int, after: str | None = None, owner: str | None = None, oldest_first: bool = False
    ) -> Page:
        """A page of files, newest first (ids grow with time) or oldest first; `after` is the last id of
        the page before, in the same order."""
        order = files.c.id.asc() if oldest_first else files.c.id.desc()
        query = _owned(sa.select(files).order_by(order), files, owner)
        if after is not None:
            query = query.where(files.c.id > after if oldest_first else files.c.id < after)
        with self.reading() as connection:
            rows = connection.execute(query.limit(limit + 1)).all()
        return Page(tuple(_file(row) for row in rows[:limit]), len(rows) > limit)

    def file_page(self, *, owner: str | None, offset: int, limit: int) -> tuple[list[FileRecord], int]:
        query = _owned(sa.select(files), files, owner)
        with self.reading() as connection:
            rows = connection.execute(query.order_by(files.c.id.desc()).offset(offset).limit(limit)).all()
            total = connection.execute(
                _owned(sa.select(sa.func.count()).select_from(files), files, owner)
            ).scalar_one()
        return [_file(row) for row in rows], total

    def rename_file(self, file_id: str, filename: str, *, owner: str | None = None) -> FileRecord | None:
        mine = () if owner is None else (files.c.owner_id == owner,)
        with self.writing() as connection:
            connection.execute(files.update().where(files.c.id == file_id, *mine).values(filename=filename))
            row = connection.execute(
                _owned(sa.select(files).where(files.c.id == file_id), files, owner)
            ).first()
        return None if row is None else _file(row)

    def delete_file(self, file_id: str, *, owner: str | None = None) -> FileRecord | None:
        """Forget a file; refused while a queued or running job still needs it (finished jobs keep
        their results and lose only the link to the audio)."""
        in_use = Conflict(
            f"File '{file_id}' is the audio of a queued or running job; cancel the job or wait for it to "
            "finish before deleting the file.",
            "file_in_use",
        )
        try:
            with self.writing() as connection:
                row = connection.execute(
                    _owned(sa.select(files).where(files.c.id == file_id), files, owner).with_for_update()
                ).first()
                if row is None:
                    return None
                waiting = connection.execute(
                    sa.select(sa.func.count())
                    .select_from(jobs)
                    .where(jobs.c.file_id == file_id, jobs.c.status.in_(("queued", "running")))
                ).scalar_one()
                if waiting:
                    raise in_use
                connection.execute(jobs.update().where(jobs.c.file_id == file_id).values(file_id=None))
                connection.execute(files.delete().where(files.c.id == file_id))
        except sa.exc.IntegrityError:  # a job naming the file was submitted meanwhile
            raise in_use from None
        return _file(row)

    def file_in_use(self, sha256: str) -> bool:
        """Whether any file record still points at this content (before removing it from storage)."""
        with self.reading() as connection:
            return (
                connection.execute(sa.select(files.c.id).where(files.c.sha256 == sha256)).first() is not None
            )

    # -- jobs: the API's side ------------------------------------------------------------------

    def submit(
        self,
        *,
        model: str | None,
        request: dict[str, Any],
        formats: Sequence[str],
        file_id: str | None = None,
        source_url: str | None = None,
        callback_url: str | None = None,
        owner_id: str = OPERATOR_ID,
    ) -> JobRecord:
        job_id = new_id("job_")
        with self.writing() as connection:
            connection.execute(
                jobs.insert().values(
                    id=job_id,
                    owner_id=owner_id,
                    status="queued",
                    created_at=time.time(),
                    model=model,
                    request=request,
                    formats=list(formats),
                    file_id=file_id,
                    source_url=source_url,
                    progress=0.0,
                    attempts=0,
                    callback_url=callback_url,
                    callback_state="none",
                    callback_attempts=0,
                )
            )
            return _job(connection.execute(self._select_job.where(jobs.c.id == job_id)).one())

    def job(self, job_id: str, *, owner: str | None = None) -> JobRecord | None:
        """The job, if it exists and `owner` (None: anyone) owns it."""
        with self.reading() as connection:
            row = connection.execute(_owned(self._select_job.where(jobs.c.id == job_id), jobs, owner)).first()
        return None if row is None else _job(row)

    def result(self, job_id: str) -> bytes | None:
        with self.reading() as connection:
            return connection.execute(
                sa.select(jobs.c.result).where(jobs.c.id == job_id)
            ).scalar_one_or_none()

    def list_jobs(
        self, *, limit: int, after: str | None = None, status: str | None = None, owner: str | None = None
    ) -> Page:
        query = _owned(self._select_job.order_by(jobs.c.id.desc()), jobs, owner)
        if after is not None:
            query = query.where(jobs.c.id < after)
        if status is not None:
            query = query.where(jobs.c.status == status)
        with self.reading() as connection:
            rows = connection.execute(query.limit(limit + 1)).all()
        return Page(tuple(_job(row) for row in rows[:limit]), len(rows) > limit)

    def job_page(self, *, owner: str | None, offset: int, limit: int) -> tuple[list[JobRecord], int]:
        query = _owned(self._select_job.order_by(jobs.c.id.desc()), jobs, owner)
        with self.reading() as connection:
            rows = connection.execute(query.offset(offset).limit(limit)).all()
            total = connection.execute(
                _owned(sa.select(sa.func.count()).select_from(jobs), jobs, owner)
            ).scalar_one()
        return [_job(row) for row in rows], total

    def jobs_of_file(self, file_id: str, *, owner: str | None = None) -> list[JobRecord]:
        query = _owned(self._select_job.where(jobs.c.file_id == file_id), jobs, owner)
        with self.reading() as connection:
            rows = connection.execute(query.order_by(jobs.c.id)).all()
        return [_job(row) for row in rows]

    def cancel(self, job_id: str, *, owner: str | None = None) -> JobRecord | None:
        """Cancel a queued or running job (its worker notices at its next lease renewal and aborts
        whisper.cpp); Conflict if it already finished."""
        now = time.time()
        mine = () if owner is None else (jobs.c.owner_id == owner,)
        with self.writing() as connection:
            changed = connection.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.status.in_(("queued", "running")), *mine)
                .values(status="cancelled", finished_at=now, lease_owner=None, lease_expires_at=None)
                .values(**_callback_due(now))
            ).rowcount
            row = connection.execute(_owned(self._select_job.where(jobs.c.id == job_id), jobs, owner)).first()
        if row is None:
            return None
        record = _job(row)
        if not changed:
            raise Conflict(f"Job '{job_id}' already {record.status}; it cannot be cancelled.", "job_finished")
        return record

    def delete_job(self, job_id: str, *, owner: str | None = None) -> JobRecord | None:
        """Forget a finished job and its result; Conflict while it is queued or running."""
        with self.writing() as connection:
            row = connection.execute(_owned(self._select_job.where(jobs.c.id == job_id), jobs, owner)).first()
            if row is None:
                return None
            record = _job(row)
            if not record.finished:
                raise Conflict(
                    f"Job '{job_id}' is {record.status}; cancel it before deleting it.", "job_not_finished"
                )
            connection.execute(jobs.delete().where(jobs.c.id == job_id))
        return record

    def queue_length(self) -> int:
        with self.reading() as connection:
            return connection.execute(
                sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status == "queued")
            ).scalar_one()

    # -- jobs: the worker's side ---------------------------------------------------------------

    def claim(self, owner: str, lease_seconds: float) -> JobRecord | None:
        """Take the oldest queued job, or one whose worker's lease ran out, and lease it to `owner`."""
        while True:
            now = time.time()
            claimable = sa.or_(
                jobs.c.status == "queued", sa.and_(jobs.c.status == "running", jobs.c.lease_expires_at < now)
            )
            oldest = (
                sa.select(jobs.c.id)
                .where(claimable)
                .order_by(jobs.c.created_at, jobs.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            with self.writing() as connection:
                row = connection.execute(
                    jobs.update()
                    .where(jobs.c.id == oldest, claimable)
                    .values(
                        status="running",
                        started_at=sa.func.coalesce(jobs.c.started_at, now),
                        attempts=jobs.c.attempts + 1,
                        lease_owner=owner,
                        lease_expires_at=now + lease_seconds,
                        progress=0.0,
                    )
                    .returning(*_JOB_FIELDS)
                ).first()
                if row is None:
                    return None
                record = _job(row)
                if record.attempts <= self.max_attempts:
                    return record
                # Its workers died this many times: the job itself is the likely cause; stop retrying.
                connection.execute(
                    jobs.update()
                    .where(jobs.c.id == record.id)
                    .values(
                        status="failed",
                        finished_at=now,
                        lease_owner=None,
                        lease_expires_at=None,
                        error_code="worker_lost",
                        error_message=f"The job's worker stopped {self.max_attempts} times while running it.",
                    )
                    .values(**_callback_due(now))
                )

    def lease_owners(self) -> set[str]:
        """Owners of the leases on running jobs."""
        with self.reading() as connection:
            rows = connection.execute(
                sa.select(jobs.c.lease_owner).where(jobs.c.status == "running").distinct()
            ).all()
        return {row[0] for row in rows if row[0]}

    def expire_leases(self, owner: str) -> int:
        """End `owner`'s leases now (it is known to be dead): its jobs are claimable at once."""
        with self.writing() as connection:
            return connection.execute(
                jobs.update()
                .where(jobs.c.status == "running", jobs.c.lease_owner == owner)
                .values(lease_expires_at=0.0)
            ).rowcount

    def renew(self, lease: Lease, lease_seconds: float, progress: float) -> bool:
        """Extend the lease and record progress; False if the job is no longer this worker's to run."""
        with self.writing() as connection:
            return bool(
                connection.execute(
                    jobs.update()
                    .where(*_held(lease))
                    .values(lease_expires_at=time.time() + lease_seconds, progress=progress)
                ).rowcount
            )

    def succeed(self, lease: Lease, result: bytes) -> bool:
        return self._finish(lease, status="succeeded", result=result, progress=1.0)

    def fail(self, lease: Lease, code: str, message: str) -> bool:
        return self._finish(lease, status="failed", error_code=code, error_message=message)

    def release(self, lease: Lease) -> bool:
        """Give a running job back to the queue (a worker shutting down), to run again from the start."""
        with self.writing() as connection:
            return bool(
                connection.execute(
                    jobs.update()
                    .where(*_held(lease))
                    .values(
                        status="queued",
                        attempts=jobs.c.attempts - 1,
                        lease_owner=None,
                        lease_expires_at=None,
                        progress=0.0,
                    )
                ).rowcount
            )

    def _finish(self, lease: Lease, **values: Any) -> bool:
        now = time.time()
        with self.writing() as connection:
            return bool(
                connection.execute(
                    jobs.update()
                    .where(*_held(lease))
                    .values(finished_at=now, lease_owner=None, lease_expires_at=None, **values)
                    .values(**_callback_due(now))
                ).rowcount
            )

    # -- callbacks -----------------------------------------------------------------------------

    def claim_callback(self, hold_seconds: float) -> JobRecord | None:
        """A finished job whose callback is due; held for `hold_seconds` so no other worker sends it too."""
        now = time.time()
        due = sa.and_(jobs.c.callback_state == "pending", jobs.c.callback_next_at <= now)
        oldest = (
            sa.select(jobs.c.id)
            .where(due)
            .order_by(jobs.c.callback_next_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        with self.writing() as connection:
            row = connection.execute(
                jobs.update()
                .where(jobs.c.id == oldest, due)
                .values(callback_next_at=now + hold_seconds, callback_attempts=jobs.c.callback_attempts + 1)
                .returning(*_JOB_FIELDS)
            ).first()
        return None if row is None else _job(row)

    def callback_done(
        self, job_id: str, attempt: int, *, delivered: bool, error: str | None, retry_at: float | None
    ) -> None:
        """Record a delivery attempt: delivered, to be retried at `retry_at`, or given up (None)."""
        state = "delivered" if delivered else ("pending" if retry_at is not None else "failed")
        with self.writing() as connection:
            connection.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.callback_attempts == attempt)
                .values(callback_state=state, callback_error=error, callback_next_at=retry_at)
            )


def _owned(query: S, table: sa.Table, owner: str | None) -> S:
    """`query` limited to `owner`'s rows of `table`; None is everyone's (an admin's view)."""
    return query if owner is None else query.where(table.c.owner_id == owner)


def _held(lease: Lease) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        jobs.c.id == lease.job_id,
        jobs.c.status == "running",
        jobs.c.lease_owner == lease.owner,
        jobs.c.attempts == lease.attempt,
    )


def _callback_due(now: float) -> dict[str, Any]:
    """A job that just finished owes its callback URL (if it has one) one delivery, due now."""
    has_callback = jobs.c.callback_url.is_not(None)
    return {
        "callback_state": sa.case((has_callback, "pending"), else_="none"),
        "callback_next_at": sa.case((has_callback, now), else_=None),
    }


def _lock_owner_files(connection: Connection, owner_id: str) -> None:
    # SQLite's IMMEDIATE transaction already holds the one writer lock.
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.select(sa.func.pg_advisory_xact_lock(_OWNER_FILES_LOCKS, sa.func.hashtext(owner_id)))
        )


def _held_files(connection: Connection, owner_id: str, new: Sequence[NewFile]) -> dict[str, FileRecord]:
    """The owner's files with the content of any of `new`, by sha256."""
    contents = {item.sha256 for item in new}
    rows = connection.execute(
        sa.select(files).where(files.c.owner_id == owner_id, files.c.sha256.in_(contents))
    ).all()
    return {row.sha256: _file(row) for row in rows}


def _storage_used(connection: Connection, owner_id: str) -> int:
    total = sa.func.coalesce(sa.func.sum(files.c.size_bytes), 0)
    return int(connection.execute(sa.select(total).where(files.c.owner_id == owner_id)).scalar_one())


def _check_room(
    connection: Connection,
    owner_id: str,
    new: Sequence[NewFile],
    held: dict[str, FileRecord],
    quota_bytes: int,
) -> None:
    # Content the owner already has is found, not added again: a re-upload fits even at the quota.
    adding = sum({item.sha256: item.size_bytes for item in new if item.sha256 not in held}.values())
    if not quota_bytes or not adding:
        return
    used = _storage_used(connection, owner_id)
    if used + adding > quota_bytes:
        raise StorageQuotaExceeded(quota_bytes, used, adding)


def _size(size_bytes: int) -> str:
    """Bytes as people read them: a small quota's numbers must not round to the same few tenths."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes} bytes"


def _as_values(record: FileRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # pysqlite would otherwise issue its own BEGIN (deferred); _sqlite_begin does instead.
    connection.isolation_level = None
    # WAL lets readers (status polls) go on while a worker writes; NORMAL sync is durable in WAL
    # mode against a killed process (not a lost machine), which is what a local queue promises.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
