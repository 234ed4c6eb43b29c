"""Row locks: a worker never waits for a row another transaction holds, nor overwrites it.

Each test holds a row lock on a second connection, in an open transaction,
as a concurrent worker or operator would, and proves what the statement
does meanwhile: `claim_next` and `purge_finished` pass over the locked row
at once (the repository's connection has a short ``lock_timeout``, so a
statement that waited would fail instead); `start` and `rescue_stale` wait
for it and then see the change that was committed. Every test runs on both repositories
(the ``side`` fixture).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from importjob import ImportJob, ImportJobRepository, ImportJobStatus
from importjob.exceptions import (
    DataImportError,
    ImportJobCancelledError,
    InvalidStatusTransitionError,
)

S = ImportJobStatus
Connect = Callable[[], psycopg.Connection[Any]]

# A wait for the held row would last until the test releases it: any bound
# makes it fail. This one leaves room for the short waits every commit may
# have on a busy server (NOTIFY's commit lock is cluster-wide).
LOCK_TIMEOUT = "2s"


def _new(side: Any, name: str = "pairs.csv") -> ImportJob:
    job: ImportJob = side.create(ImportJob(source_type="csv", filename=name))
    return job


def _set_lock_timeout(side: Any) -> None:
    # Set on the repository's own connection: its statements give up on a lock wait.
    statement = f"SET lock_timeout = '{LOCK_TIMEOUT}'"
    if side.kind == "sync":
        side.repo.connection.execute(statement)
    else:
        side.runner.run(side.repo.connection.execute(statement))


def _lock(holder: psycopg.Connection[Any], job: ImportJob) -> None:
    # Inside the holder's open transaction: the row stays locked until it ends.
    assert holder.info.transaction_status is psycopg.pq.TransactionStatus.INTRANS
    locked = holder.execute("SELECT id FROM import_job WHERE id = %s FOR UPDATE", [job.id])
    assert locked.fetchone() == (job.id,)


def _ids(jobs: list[ImportJob]) -> list[Any]:
    return [job.id for job in jobs]


def test_claim_next_passes_over_a_job_another_worker_holds(side: Any, connect: Connect) -> None:
    oldest, second, third = (_new(side, f"{n}.csv") for n in range(3))
    _set_lock_timeout(side)
    holder = connect()
    with holder.transaction():
        _lock(holder, oldest)
        # At once, not after the holder is done: the oldest is skipped, not waited for.
        claimed = side.claim_next("worker-b")
        assert (claimed.id, claimed.status, claimed.worker_id) == (
            second.id,
            S.PROCESSING,
            "worker-b",
        )
        assert side.claim_next("worker-b").id == third.id
        # Only the held job is left: nothing to claim now, and still no wait.
        assert side.claim_next("worker-b") is None
    # Released (the holder did not claim it): the next worker gets it.
    assert side.claim_next("worker-c").id == oldest.id
    assert side.list_by_status(S.PENDING, limit=10) == []


def test_purge_is_not_blocked_by_a_locked_finished_job(
    side: Any, conn: psycopg.Connection[Any], connect: Connect
) -> None:
    ended = []
    for status in (S.COMPLETED, S.FAILED, S.CANCELLED):
        job = _new(side, f"{status.value}.csv")
        side.start(job.id, "w")
        ended.append(side.update_status(job.id, status))
    pending = _new(side, "pending.csv")
    _set_lock_timeout(side)
    holder = connect()
    with holder.transaction():
        # The oldest ended job, the first one every batch would take.
        _lock(holder, ended[0])
        # Batches of one: each passes over the locked job to the next one.
        assert side.purge_finished(timedelta(0), batch=1) == 2
        left = conn.execute("SELECT id FROM import_job ORDER BY created_at").fetchall()
        assert [row[0] for row in left] == [ended[0].id, pending.id]
    assert side.purge_finished(timedelta(0), batch=1) == 1
    assert side.get_by_id(ended[0].id) is None
    assert side.get_by_id(pending.id) == pending


@pytest.mark.parametrize(
    ("ended_as", "error"),
    [(S.CANCELLED, ImportJobCancelledError), (S.FAILED, InvalidStatusTransitionError)],
    ids=["cancelled", "failed"],
)
def test_start_racing_an_end_reports_the_end_and_leaves_it(
    side: Any,
    connect: Connect,
    lock_waiters: Callable[..., None],
    ended_as: ImportJobStatus,
    error: type[DataImportError],
) -> None:
    job = _new(side)
    holder = connect()
    outcome: list[object] = []

    def start() -> None:
        try:
            outcome.append(side.start(job.id, "late-worker"))
        except DataImportError as exc:
            outcome.append(exc)

    starter = threading.Thread(target=start)
    with holder.transaction():
        _lock(holder, job)
        starter.start()
        # start read the job as PENDING, or is about to: it waits for the row.
        lock_waiters(pid=side.repo.connection.info.backend_pid)
        # Ended, and committed while start waits.
        ImportJobRepository(holder).update_status(job.id, ended_as)
    starter.join(timeout=30)
    assert not starter.is_alive()
    [result] = outcome
    # The documented error for an ended job, not a constraint's.
    assert type(result) is error
    assert isinstance(result, ImportJobCancelledError | InvalidStatusTransitionError)
    assert result.job_id == job.id
    if isinstance(result, InvalidStatusTransitionError):
        assert (result.from_status, result.to_status) == (ended_as, S.PROCESSING)
    stored = side.get_by_id(job.id)
    assert stored.status is ended_as
    assert stored.completed_at is not None
    assert (stored.started_at, stored.worker_id) == (None, None)


@pytest.mark.parametrize("alive_as", ["heartbeat", "completion"])
def test_rescue_stale_waiting_on_a_job_that_comes_alive_leaves_it(
    side: Any,
    conn: psycopg.Connection[Any],
    connect: Connect,
    lock_waiters: Callable[..., None],
    alive_as: str,
) -> None:
    job, lost = _new(side, "alive.csv"), _new(side, "lost.csv")
    for each in (job, lost):
        side.start(each.id, "worker-a")
    side.add_error(job.id, {"type": "ImportValidationError", "row": 1, "message": "empty"})
    # Both look lost: no heartbeat for an hour.
    conn.execute("UPDATE import_job SET heartbeat_at = now() - interval '1 hour'")
    holder = connect()
    outcome: list[object] = []

    def rescue() -> None:
        try:
            outcome.append(side.rescue_stale(timedelta(minutes=5)))
        except DataImportError as exc:
            outcome.append(exc)

    rescuer = threading.Thread(target=rescue)
    with holder.transaction():
        _lock(holder, job)
        rescuer.start()
        # rescue_stale read the job as stale, or is about to: it waits for the row.
        lock_waiters(pid=side.repo.connection.info.backend_pid)
        # Its worker shows it is alive (or ends it), committed while rescue_stale waits.
        if alive_as == "heartbeat":
            ImportJobRepository(holder).heartbeat(job.id, "worker-a")
        else:
            ImportJobRepository(holder).update_status(job.id, S.COMPLETED)
    rescuer.join(timeout=30)
    assert not rescuer.is_alive()
    [rescued] = outcome
    assert isinstance(rescued, list)
    assert [each.id for each in rescued] == [lost.id]  # the lost one only
    stored = side.get_by_id(job.id)
    assert stored.status is (S.PROCESSING if alive_as == "heartbeat" else S.COMPLETED)
    assert stored.worker_id == "worker-a"
    # No WorkerLostError entry, anywhere it could be read.
    assert [entry["row"] for entry in stored.errors] == [1]
    assert [entry["row"] for entry in side.errors_of(job.id)] == [1]
    assert [group.type for group in side.error_summary(job.id)] == ["ImportValidationError"]
