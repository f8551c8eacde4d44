"""The job store: a durable queue with leases, and deduplicated files, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from whisper_api.jobs import store as store_module
from whisper_api.jobs.store import Conflict, Lease, NewFile, StorageQuotaExceeded, Store

LEASE = 30.0


class Clock:
    """The store's `time` module with a wall clock the test moves on, so leases run out without waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(store_module, "time", fake)
    return fake


def _submit(store: Store, **extra: object) -> str:
    return store.submit(model="tiny", request={"options": {}}, formats=["json"], **extra).id  # type: ignore[arg-type]


def _lease_of(store: Store, owner: str = "worker-a", lease: float = LEASE) -> Lease:
    job = store.claim(owner, lease)
    assert job is not None
    return Lease(job.id, owner, job.attempts)


def test_a_submitted_job_is_queued_with_nothing_done(store: Store) -> None:
    job = store.job(_submit(store))
    assert job is not None
    assert (job.status, job.progress, job.attempts, job.has_result) == ("queued", 0.0, 0, False)


def test_workers_take_the_oldest_job_first_and_each_job_once(store: Store) -> None:
    first, second = _submit(store), _submit(store)
    taken_a = store.claim("worker-a", LEASE)
    taken_b = store.claim("worker-b", LEASE)
    assert (taken_a.id, taken_b.id) == (first, second)  # type: ignore[union-attr]
    assert store.claim("worker-c", LEASE) is None


def test_concurrent_claims_never_hand_out_a_job_twice(store: Store) -> None:
    submitted = {_submit(store) for _ in range(30)}
    taken: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := store.claim(name, LEASE)) is not None:
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"worker-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(submitted)


def test_a_job_whose_lease_ran_out_runs_again_and_its_old_worker_cannot_finish_it(
    store: Store, clock: Clock
) -> None:
    _submit(store)
    stale = _lease_of(store, "worker-a")
    clock.advance(LEASE + 1)
    retaken = store.claim("worker-b", LEASE)
    assert retaken is not None and retaken.attempts == 2
    assert not store.succeed(stale, b"{}")
    assert not store.renew(stale, LEASE, 0.5)
    assert store.succeed(Lease(retaken.id, "worker-b", 2), b"{}")
    assert store.job(retaken.id).status == "succeeded"  # type: ignore[union-attr]


def test_a_renewed_lease_keeps_the_job_and_records_progress(store: Store, clock: Clock) -> None:
    job_id = _submit(store)
    lease = _lease_of(store)
    for _ in range(3):  # together longer than one lease
        clock.advance(LEASE / 2)
        assert store.renew(lease, LEASE, 0.25)
    assert store.claim("worker-b", LEASE) is None
    assert store.job(job_id).progress == 0.25  # type: ignore[union-attr]


def test_a_job_that_keeps_losing_its_worker_fails_instead_of_looping(store: Store, clock: Clock) -> None:
    job_id = _submit(store)
    for _ in range(store.max_attempts):
        assert store.claim("doomed", LEASE) is not None
        clock.advance(LEASE + 1)
    assert store.claim("worker-b", LEASE) is None
    job = store.job(job_id)
    assert (job.status, job.error_code) == ("failed", "worker_lost")  # type: ignore[union-attr]


def test_a_cancelled_queued_job_never_runs(store: Store) -> None:
    job_id = _submit(store)
    assert store.cancel(job_id).status == "cancelled"  # type: ignore[union-attr]
    assert store.claim("worker-a", LEASE) is None


def test_cancelling_a_running_job_takes_it_from_its_worker(store: Store) -> None:
    job_id = _submit(store)
    lease = _lease_of(store)
    store.cancel(job_id)
    assert not store.renew(lease, LEASE, 0.5)  # the worker learns it must abort
    assert not store.succeed(lease, b"{}")
    job = store.job(job_id)
    assert (job.status, job.has_result) == ("cancelled", False)  # type: ignore[union-attr]


def test_a_finished_job_cannot_be_cancelled(store: Store) -> None:
    job_id = _submit(store)
    assert store.succeed(_lease_of(store), b"{}")
    with pytest.raises(Conflict, match="already succeeded"):
        store.cancel(job_id)
    assert store.result(job_id) == b"{}"


def _race_cancel_with_completion(store: Store, job_id: str, lease: Lease) -> tuple[bool, bool]:
    """(completion stored, cancel accepted), run on two threads at once."""
    outcome: dict[str, bool] = {}

    def complete() -> None:
        outcome["stored"] = store.succeed(lease, b"{}")

    def cancel() -> None:
        try:
            outcome["cancelled"] = store.cancel(job_id) is not None
        except Conflict:
            outcome["cancelled"] = False

    threads = [threading.Thread(target=complete), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome["stored"], outcome["cancelled"]


def test_cancel_racing_completion_ends_one_way_only(store: Store) -> None:
    for _ in range(20):
        job_id = _submit(store)
        stored, cancelled = _race_cancel_with_completion(store, job_id, _lease_of(store))
        job = store.job(job_id)
        assert stored != cancelled
        assert job.status == ("succeeded" if stored else "cancelled")  # type: ignore[union-attr]
        assert job.has_result == stored  # type: ignore[union-attr]


def test_a_released_job_goes_back_to_the_queue_without_counting_an_attempt(store: Store) -> None:
    job_id = _submit(store)
    assert store.release(_lease_of(store))
    job = store.job(job_id)
    assert (job.status, job.attempts) == ("queued", 0)  # type: ignore[union-attr]
    assert store.claim("worker-b", LEASE).id == job_id  # type: ignore[union-attr]


def test_only_finished_jobs_can_be_deleted(store: Store) -> None:
    job_id = _submit(store)
    lease = _lease_of(store)
    with pytest.raises(Conflict, match="cancel it"):
        store.delete_job(job_id)
    store.fail(lease, "invalid_audio", "bad")
    assert store.delete_job(job_id) is not None
    assert store.job(job_id) is None


def test_listing_pages_newest_first_and_filters_by_status(store: Store) -> None:
    ids = [_submit(store) for _ in range(5)]
    store.cancel(ids[0])
    first = store.list_jobs(limit=2)
    assert [job.id for job in first.items] == ids[:2:-1][:2] and first.has_more
    rest = store.list_jobs(limit=10, after=first.items[-1].id)
    assert [job.id for job in rest.items] == ids[2::-1] and not rest.has_more
    assert [job.id for job in store.list_jobs(limit=10, status="cancelled").items] == [ids[0]]


def test_the_same_content_is_one_file(store: Store) -> None:
    first, existed_first = store.add_file("a" * 64, "one.mp3", "audio/mpeg", 10)
    again, existed_again = store.add_file("a" * 64, "two.mp3", "audio/mpeg", 10)
    assert (existed_first, existed_again) == (False, True)
    assert again.id == first.id and again.filename == "one.mp3"


def test_a_file_a_waiting_job_needs_cannot_be_deleted(store: Store) -> None:
    record, _ = store.add_file("b" * 64, "x.wav", "audio/wav", 10)
    job_id = _submit(store, file_id=record.id)
    with pytest.raises(Conflict, match="queued or running"):
        store.delete_file(record.id)
    store.cancel(job_id)
    assert store.delete_file(record.id) is not None
    assert store.job(job_id).file_id is None  # type: ignore[union-attr]
    assert not store.file_in_use("b" * 64)


def _new(content: str, size: int = 10) -> NewFile:
    return NewFile(content * 64, f"{content}.wav", "audio/wav", size)


def test_an_owner_s_files_stay_within_their_quota_and_deleting_one_frees_room(store: Store) -> None:
    first, _ = store.add_files([_new("a")], owner_id="alice", quota_bytes=25)[0]
    store.add_files([_new("b")], owner_id="alice", quota_bytes=25)
    with pytest.raises(StorageQuotaExceeded, match="quota of 25 bytes: your files take 20 bytes"):
        store.add_files([_new("c")], owner_id="alice", quota_bytes=25)
    assert store.add_files([_new("a")], owner_id="alice", quota_bytes=25) == [(first, True)]
    store.delete_file(first.id)
    assert store.add_files([_new("c")], owner_id="alice", quota_bytes=25)[0][1] is False
    assert store.storage_used("alice") == 20


def test_content_another_owner_has_counts_in_full_against_one_s_own_quota(store: Store) -> None:
    store.add_files([_new("a", 20)], owner_id="alice")
    store.add_files([_new("a", 20)], owner_id="bob", quota_bytes=25)
    with pytest.raises(StorageQuotaExceeded):
        store.check_room([_new("b")], owner_id="bob", quota_bytes=25)
    assert (store.storage_used("alice"), store.storage_used("bob")) == (20, 20)


def test_files_added_together_are_all_refused_when_only_some_fit(store: Store) -> None:
    with pytest.raises(StorageQuotaExceeded):
        store.add_files([_new("a"), _new("b")], owner_id="alice", quota_bytes=15)
    assert store.storage_used("alice") == 0


def test_uploads_at_once_on_two_replicas_never_take_an_owner_past_their_quota(
    store: Store, database_url: str
) -> None:
    replica = Store(database_url)
    uploads = 8
    start = threading.Barrier(uploads)
    outcomes: list[bool] = []

    def upload(target: Store, content: str) -> None:
        start.wait()
        try:
            target.add_files([_new(content)], owner_id="alice", quota_bytes=35)
            outcomes.append(True)
        except StorageQuotaExceeded:
            outcomes.append(False)

    threads = [
        threading.Thread(target=upload, args=(replica if n % 2 else store, "0123456789abcdef"[n]))
        for n in range(uploads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    replica.close()
    assert outcomes.count(True) == 3 and store.storage_used("alice") == 30


def test_a_finished_job_with_a_callback_owes_one_delivery(store: Store) -> None:
    job_id = _submit(store, callback_url="https://example.com/hook")
    _submit(store)  # no callback: owes nothing
    assert store.claim_callback(60) is None
    store.succeed(_lease_of(store), b"{}")
    owed = store.claim_callback(60)
    assert owed is not None and owed.id == job_id and owed.callback_attempts == 1
    assert store.claim_callback(60) is None  # held by the first sender
    store.callback_done(job_id, 1, delivered=False, error="HTTP 500", retry_at=time.time() - 1)
    retry = store.claim_callback(60)
    assert retry is not None and retry.callback_attempts == 2
    store.callback_done(job_id, 2, delivered=True, error=None, retry_at=None)
    assert store.job(job_id).callback_state == "delivered"  # type: ignore[union-attr]
    assert store.claim_callback(60) is None


def test_a_dead_owners_leases_can_be_ended_at_once(store: Store) -> None:
    job_id = _submit(store)
    _lease_of(store, "host:123:abc", lease=600)
    assert store.lease_owners() == {"host:123:abc"}
    assert store.expire_leases("host:123:abc") == 1
    retaken = store.claim("worker-b", LEASE)
    assert retaken is not None and retaken.id == job_id and retaken.attempts == 2
