"""Shared progress: advance, bounded errors, claiming, heartbeats, rescue, retention.

Every test runs twice: on ImportJobRepository and on AsyncImportJobRepository
(the ``side`` fixture).
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

import importjob
from importjob import ImportJob, ImportJobStatus
from importjob.exceptions import (
    ImportJobCancelledError,
    ImportJobExistsError,
    ImportJobNotFoundError,
    InvalidFieldError,
    InvalidStatusTransitionError,
    ParseError,
)

S = ImportJobStatus


def _new(side: Any, **fields: Any) -> ImportJob:
    job: ImportJob = side.create(ImportJob(source_type="csv", filename="pairs.csv", **fields))
    return job


def _row(conn: psycopg.Connection[Any], job_id: uuid.UUID) -> tuple[Any, ...] | None:
    return conn.execute("SELECT * FROM import_job WHERE id = %s", [job_id]).fetchone()


def test_the_basic_calls_behave_alike(side: Any) -> None:
    job = _new(side, total_rows=10)
    assert side.get_by_id(job.id) == job
    assert side.get_by_id(uuid.uuid4()) is None
    with pytest.raises(ImportJobExistsError):
        side.create(job)
    side.update_progress(job.id, 3, 2, 1, total=12)
    started = side.update_status(job.id, "processing")
    assert (started.processed_rows, started.total_rows) == (3, 12)
    assert started.heartbeat_at == started.started_at  # a started job counts as alive
    assert side.list_by_status(S.PROCESSING, 5) == [started]
    newer = _new(side)
    assert side.list_recent() == [newer, started]
    assert side.list_recent(S.PENDING) == [newer]
    assert side.list_recent(limit=1) == [newer]
    with pytest.raises(ImportJobNotFoundError):
        side.update_progress(uuid.uuid4(), 1, 1, 0)
    with pytest.raises(InvalidStatusTransitionError):
        side.update_status(job.id, S.PENDING)


def test_advance_adds_and_returns_the_status(side: Any, conn: Any) -> None:
    job = _new(side)
    assert side.advance(job.id, processed=10, success=9, errors=1) is S.PENDING
    assert side.advance(job.id, 10, 9, 1) is S.PENDING
    side.update_status(job.id, S.PROCESSING)
    assert side.advance(job.id, success=5) is S.PROCESSING
    stored = side.get_by_id(job.id)
    assert (stored.processed_rows, stored.success_count, stored.error_count) == (20, 23, 2)
    side.cancel(job.id)
    # Counts are never lost, even on a job that ended: the status says stop.
    assert side.advance(job.id, processed=1, success=1) is S.CANCELLED
    assert side.get_by_id(job.id).processed_rows == 21


def test_advance_unknown_id(side: Any) -> None:
    with pytest.raises(ImportJobNotFoundError):
        side.advance(uuid.uuid4(), processed=1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"processed": -1}, "processed"),
        ({"success": 1.0}, "success"),
        ({"errors": "2"}, "errors"),
        ({"entries": "boom"}, "entries"),
        ({"entries": [{"x": "\x00"}]}, "entries"),
        ({"entries": [{"x": object()}]}, "entries"),
        ({"entries_dropped": -3}, "entries_dropped"),
        ({"worker_id": ""}, "worker_id"),
        ({"worker_id": "w\x00"}, "worker_id"),
        ({"batch_id": "w-1"}, "batch_id"),
        ({"batch_id": ("w-1",)}, "batch_id"),
        ({"batch_id": ("w-1", 0)}, "batch_id"),
        ({"batch_id": ("w-1", True)}, "batch_id"),
        ({"batch_id": ("w-1", 2**63)}, "batch_id"),
        ({"batch_id": ("", 1)}, "batch_id"),
        ({"batch_id": ("w" * 201, 1)}, "batch_id"),
        ({"batch_id": ("w\x00", 1)}, "batch_id"),
        ({"batch_id": (1, 1)}, "batch_id"),
    ],
)
def test_advance_refuses_bad_input(
    side: Any, conn: Any, kwargs: dict[str, Any], field: str
) -> None:
    job = _new(side)
    before = _row(conn, job.id)
    with pytest.raises(InvalidFieldError) as caught:
        side.advance(job.id, **kwargs)
    assert caught.value.field == field
    assert _row(conn, job.id) == before


def test_advance_applies_a_keys_batches_once_in_increasing_number(side: Any, conn: Any) -> None:
    job = _new(side)
    entry = {"row": 1, "message": "bad"}

    def counts() -> tuple[int, int, int, int]:
        stored = side.get_by_id(job.id)
        return stored.processed_rows, stored.success_count, stored.error_count, len(stored.errors)

    assert side.advance(job.id, 10, 9, 1, entries=[entry], batch_id=("a", 1)) is S.PENDING
    assert counts() == (10, 9, 1, 1)
    # The same batch again (its reply was lost): nothing added, the status told.
    assert side.advance(job.id, 10, 9, 1, entries=[entry], batch_id=("a", 1)) is S.PENDING
    assert counts() == (10, 9, 1, 1)
    side.advance(job.id, 5, 5, batch_id=("a", 3))  # numbers may skip
    side.advance(job.id, 5, 5, batch_id=("a", 2))  # an older one comes too late
    assert counts() == (15, 14, 1, 1)
    side.advance(job.id, 7, 7, batch_id=("b", 1))  # each key has its own numbers
    side.advance(job.id, 1, 1)  # and calls without one always count
    assert counts() == (23, 22, 1, 1)
    marks = conn.execute("SELECT applied_batches FROM import_job WHERE id = %s", [job.id])
    assert marks.fetchone() == ({"a": 3, "b": 1},)
    side.cancel(job.id)
    assert side.advance(job.id, 7, 7, batch_id=("b", 1)) is S.CANCELLED
    assert counts() == (23, 22, 1, 1)
    with pytest.raises(ImportJobNotFoundError):
        side.advance(uuid.uuid4(), 1, batch_id=("a", 9))


def test_advance_records_the_worker_of_a_processing_job(side: Any) -> None:
    job = _new(side)
    side.advance(job.id, processed=1, worker_id="w-pending")
    assert side.get_by_id(job.id).worker_id is None  # not running: no worker to record
    started = side.update_status(job.id, S.PROCESSING)
    time.sleep(0.01)
    side.advance(job.id, processed=1, worker_id="w-1")
    stored = side.get_by_id(job.id)
    assert stored.worker_id == "w-1"
    assert stored.heartbeat_at > started.heartbeat_at
    side.advance(job.id, processed=1)  # no worker named: heartbeat untouched
    assert side.get_by_id(job.id).heartbeat_at == stored.heartbeat_at


def test_errors_are_bounded_oldest_kept(side: Any) -> None:
    bounded = side.with_max_errors(5)
    job = _new(bounded)
    entries = [{"row": row, "message": "bad"} for row in range(7)]
    bounded.add_errors(job.id, entries)
    stored = bounded.get_by_id(job.id)
    assert stored.errors == entries[:5]
    assert stored.errors_dropped == 2
    bounded.add_error(job.id, ParseError(8, "late"))
    assert bounded.advance(job.id, processed=9, errors=9, entries=entries[:2]) is S.PENDING
    stored = bounded.get_by_id(job.id)
    assert stored.errors == entries[:5]  # full: the oldest stay
    assert stored.errors_dropped == 5
    assert stored.error_count == 9  # every failed row is counted


def test_a_batch_that_fits_partly(side: Any) -> None:
    bounded = side.with_max_errors(3)
    job = _new(bounded)
    bounded.add_error(job.id, {"n": 0})
    bounded.advance(job.id, entries=[{"n": 1}, {"n": 2}, {"n": 3}], entries_dropped=4)
    stored = bounded.get_by_id(job.id)
    assert stored.errors == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert stored.errors_dropped == 1 + 4


def test_max_errors_zero_keeps_none(side: Any) -> None:
    none_kept = side.with_max_errors(0)
    job = _new(none_kept)
    none_kept.add_errors(job.id, [{"n": 1}, {"n": 2}])
    stored = none_kept.get_by_id(job.id)
    assert (stored.errors, stored.errors_dropped) == ([], 2)


def test_max_errors_must_be_a_count(side: Any) -> None:
    with pytest.raises(InvalidFieldError, match="max_errors"):
        side.with_max_errors(-1)


def test_claim_next_takes_the_oldest_pending_job(side: Any) -> None:
    jobs = [_new(side) for _ in range(3)]
    side.cancel(jobs[0].id)
    claimed = side.claim_next("worker-a")
    assert claimed.id == jobs[1].id
    assert claimed.status is S.PROCESSING
    assert claimed.worker_id == "worker-a"
    assert claimed.started_at is not None
    assert claimed.heartbeat_at == claimed.started_at
    assert side.claim_next().id == jobs[2].id
    assert side.claim_next() is None


def test_claim_next_defaults_to_this_process(side: Any) -> None:
    _new(side)
    assert side.claim_next().worker_id == importjob.worker_id()


def test_start(side: Any) -> None:
    job = _new(side)
    started = side.start(job.id, "w-1")
    assert (started.status, started.worker_id) == (S.PROCESSING, "w-1")
    taken_over = side.start(job.id, "w-2")  # a processing job changes hands
    assert taken_over.worker_id == "w-2"
    assert taken_over.started_at == started.started_at
    side.cancel(job.id)
    with pytest.raises(ImportJobCancelledError):
        side.start(job.id)
    done = _new(side)
    side.update_status(done.id, S.FAILED)
    with pytest.raises(InvalidStatusTransitionError):
        side.start(done.id)
    with pytest.raises(ImportJobNotFoundError):
        side.start(uuid.uuid4())
    with pytest.raises(InvalidFieldError, match="job_id"):  # found by the property tests
        side.start(None)


def test_heartbeat(side: Any) -> None:
    job = _new(side)
    assert side.heartbeat(job.id) is S.PENDING
    started = side.update_status(job.id, S.PROCESSING)
    time.sleep(0.01)
    assert side.heartbeat(job.id) is S.PROCESSING
    stored = side.get_by_id(job.id)
    assert stored.heartbeat_at > started.heartbeat_at
    assert stored.worker_id == importjob.worker_id()
    assert (stored.processed_rows, stored.updated_at) == (0, stored.heartbeat_at)


def test_worker_identity_is_per_process() -> None:
    me = importjob.worker_id()
    assert me == importjob.worker_id()
    host, pid, tag = me.rsplit(":", 2)
    assert host
    assert int(pid) > 0
    assert len(tag) == 8


def test_rescue_stale_fails_only_the_lost(side: Any, conn: Any) -> None:
    lost = _new(side)
    alive = _new(side)
    idle = _new(side)
    side.start(lost.id, "lost-worker")
    side.advance(lost.id, processed=40, success=38, errors=2)
    time.sleep(1.2)
    side.start(alive.id, "live-worker")
    before_alive, before_idle = _row(conn, alive.id), _row(conn, idle.id)
    [rescued] = side.rescue_stale(timedelta(seconds=0.6))
    assert rescued.id == lost.id
    assert rescued.status is S.FAILED
    assert rescued.completed_at is not None
    assert (rescued.processed_rows, rescued.success_count, rescued.error_count) == (40, 38, 2)
    [entry] = rescued.errors
    assert entry["type"] == "WorkerLostError"
    assert entry["worker_id"] == "lost-worker"
    assert entry["requeued"] is False
    assert "lost-worker" in entry["message"]
    assert side.get_by_id(lost.id) == rescued
    assert _row(conn, alive.id) == before_alive
    assert _row(conn, idle.id) == before_idle
    assert side.rescue_stale(timedelta(seconds=0.6)) == []


def test_rescue_stale_can_requeue(side: Any) -> None:
    lost = _new(side)
    side.claim_next("lost-worker")
    side.advance(lost.id, processed=5, success=5)
    time.sleep(0.3)
    [rescued] = side.rescue_stale(timedelta(seconds=0.1), requeue=True)
    assert rescued.status is S.PENDING
    assert rescued.started_at is rescued.completed_at is rescued.worker_id is None
    assert rescued.errors[0]["requeued"] is True
    assert rescued.processed_rows == 5  # a resuming worker can skip what was done
    again = side.claim_next("next-worker")
    assert (again.id, again.worker_id) == (lost.id, "next-worker")


def test_rescue_stale_keeps_the_bound(side: Any) -> None:
    bounded = side.with_max_errors(1)
    job = _new(bounded)
    bounded.start(job.id)
    bounded.add_error(job.id, {"message": "first"})
    time.sleep(0.3)
    [rescued] = bounded.rescue_stale(timedelta(seconds=0.1))
    assert rescued.errors == [{"message": "first"}]
    assert rescued.errors_dropped == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"older_than": 5}, "older_than"),
        ({"older_than": timedelta(seconds=-1)}, "older_than"),
        ({"older_than": timedelta(0), "requeue": "yes"}, "requeue"),
    ],
)
def test_rescue_stale_refuses_bad_input(side: Any, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        side.rescue_stale(**kwargs)
    assert caught.value.field == field


def test_purge_finished_deletes_only_old_ended_jobs(side: Any, conn: Any) -> None:
    ended = []
    for status in [S.COMPLETED, S.FAILED, S.CANCELLED, S.COMPLETED, S.FAILED]:
        job = _new(side)
        side.start(job.id)
        ended.append(side.update_status(job.id, status))
    pending = _new(side)
    running = _new(side)
    side.start(running.id)
    time.sleep(1.2)
    recent = _new(side)
    side.update_status(recent.id, S.CANCELLED)
    assert side.purge_finished(timedelta(days=1)) == 0
    assert side.purge_finished(timedelta(seconds=0.6), batch=2) == 5
    left = {row[0] for row in conn.execute("SELECT id FROM import_job").fetchall()}
    assert left == {pending.id, running.id, recent.id}
    time.sleep(0.3)
    assert side.purge_finished(timedelta(0)) == 1
    assert side.get_by_id(running.id).status is S.PROCESSING
    assert side.get_by_id(pending.id).status is S.PENDING


@pytest.mark.parametrize("batch", [0, -1, 2.5, None])
def test_purge_finished_refuses_bad_batch(side: Any, batch: Any) -> None:
    with pytest.raises(InvalidFieldError, match="batch"):
        side.purge_finished(timedelta(days=1), batch=batch)
