"""The tracker: buffered counts, flushes, completion, failure, cancellation, bounds.

Every test through ``side`` runs on `track` and on `track_async`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psycopg
import pytest

from importjob import (
    AsyncImportJobRepository,
    ImportJob,
    ImportJobRepository,
    ImportJobStatus,
    track,
    track_async,
)
from importjob.exceptions import (
    ImportJobCancelledError,
    ImportJobNotFoundError,
    ImportJobStoppedError,
    ImportValidationError,
    InvalidFieldError,
)

S = ImportJobStatus
HOUR = 3600.0


def _new(side: Any) -> ImportJob:
    job: ImportJob = side.create(ImportJob(source_type="csv", filename="pairs.csv"))
    return job


def _stored(conn: psycopg.Connection[Any], job_id: uuid.UUID) -> ImportJob:
    job = ImportJobRepository(conn).get_by_id(job_id)
    assert job is not None
    return job


def test_a_tracked_import_completes_with_exact_counts(side: Any, conn: Any) -> None:
    job = _new(side)
    with side.track(job.id, every_rows=100, every_seconds=HOUR) as t:
        started = _stored(conn, job.id)
        assert started.status is S.PROCESSING
        assert started.started_at is not None
        assert started.worker_id == t.worker_id
        for row in range(1, 251):
            if row % 50 == 0:
                t.failed(ImportValidationError(row, "answer", "must not be empty", value=""))
            else:
                t.ok()
        # Two flushes of 100 rows so far; 50 rows wait in memory.
        assert _stored(conn, job.id).processed_rows == 200
        assert t.unflushed == 50
        assert (t.processed_rows, t.success_count, t.error_count) == (250, 245, 5)
    done = _stored(conn, job.id)
    assert done.status is S.COMPLETED
    assert done.completed_at is not None
    assert (done.processed_rows, done.success_count, done.error_count) == (250, 245, 5)
    assert [entry["row"] for entry in done.errors] == [50, 100, 150, 200, 250]
    assert done.errors[0] == {
        "type": "ImportValidationError",
        "message": "must not be empty",
        "row": 50,
        "field": "answer",
        "value": "",
    }


def test_ok_counts_several_rows_at_once(side: Any, conn: Any) -> None:
    job = _new(side)
    with side.track(job.id, every_rows=1000, every_seconds=HOUR) as t:
        t.ok(600)
        assert _stored(conn, job.id).processed_rows == 0
        t.ok(600)
        assert _stored(conn, job.id).processed_rows == 1200
        t.ok(0)
    assert _stored(conn, job.id).success_count == 1200


def test_flushes_after_every_seconds(side: Any, conn: Any) -> None:
    job = _new(side)
    with side.track(job.id, every_rows=1_000_000, every_seconds=0.2) as t:
        t.ok()
        assert _stored(conn, job.id).processed_rows == 0
        time.sleep(0.25)
        t.ok()
        assert _stored(conn, job.id).processed_rows == 2
        t.failed({"message": "x"})
        assert _stored(conn, job.id).processed_rows == 2


def test_leaving_on_an_exception_fails_the_job_and_keeps_the_counts(side: Any, conn: Any) -> None:
    job = _new(side)
    with (
        pytest.raises(RuntimeError, match="embedding service down"),
        side.track(job.id, every_rows=1000, every_seconds=HOUR) as t,
    ):
        t.ok(7)
        t.failed({"row": 8, "message": "bad"})
        raise RuntimeError("embedding service down")
    failed = _stored(conn, job.id)
    assert failed.status is S.FAILED
    assert (failed.processed_rows, failed.success_count, failed.error_count) == (8, 7, 1)
    assert failed.errors == [
        {"row": 8, "message": "bad"},
        {"type": "RuntimeError", "message": "embedding service down"},
    ]


def test_an_import_exception_is_stored_with_its_context(side: Any, conn: Any) -> None:
    job = _new(side)
    with pytest.raises(ImportValidationError), side.track(job.id) as t:
        t.ok()
        raise ImportValidationError(2, "question", "header missing")
    failed = _stored(conn, job.id)
    assert failed.status is S.FAILED
    assert failed.errors[-1]["type"] == "ImportValidationError"
    assert failed.errors[-1]["field"] == "question"


def test_a_cancel_stops_the_worker_at_its_next_flush(side: Any, conn: Any) -> None:
    job = _new(side)
    other = ImportJobRepository(conn)
    counted = 0
    with (
        pytest.raises(ImportJobCancelledError) as caught,
        side.track(job.id, every_rows=10, every_seconds=HOUR) as t,
    ):
        for _ in range(25):
            t.ok()
            counted += 1
        other.cancel(job.id)
        for _ in range(100):
            t.ok()
            counted += 1
    assert caught.value.job_id == job.id
    assert counted == 29  # the flush at row 30 said stop: ok() raised there
    cancelled = _stored(conn, job.id)
    assert cancelled.status is S.CANCELLED
    assert cancelled.processed_rows == 30  # nothing counted is lost
    assert cancelled.errors == []


def test_a_cancel_before_the_end_is_not_overwritten(side: Any, conn: Any) -> None:
    job = _new(side)
    with (
        pytest.raises(ImportJobCancelledError),
        side.track(job.id, every_rows=1000, every_seconds=HOUR) as t,
    ):
        t.ok(3)
        ImportJobRepository(conn).cancel(job.id)
    cancelled = _stored(conn, job.id)
    assert (cancelled.status, cancelled.processed_rows) == (S.CANCELLED, 3)


def test_a_job_ended_elsewhere_stops_the_worker(side: Any, conn: Any) -> None:
    job = _new(side)
    with (
        pytest.raises(ImportJobStoppedError) as caught,
        side.track(job.id, every_rows=5, every_seconds=HOUR) as t,
    ):
        t.ok(4)
        ImportJobRepository(conn).update_status(job.id, S.FAILED)
        t.ok()
    assert not isinstance(caught.value, ImportJobCancelledError)
    assert caught.value.status is S.FAILED
    assert _stored(conn, job.id).status is S.FAILED


def test_errors_past_the_bound_are_counted_not_kept(side: Any, conn: Any) -> None:
    bounded = side.with_max_errors(10)
    job = _new(bounded)
    with bounded.track(job.id, every_rows=7, every_seconds=HOUR) as t:
        for row in range(25):
            t.failed({"row": row})
        # Buffered past the bound, between two flushes:
        for row in range(25, 40):
            t.failed({"row": row})
    done = _stored(conn, job.id)
    assert done.error_count == 40
    assert [entry["row"] for entry in done.errors] == list(range(10))
    assert done.errors_dropped == 30


def test_a_buffer_never_holds_more_than_the_bound(side: Any, conn: Any) -> None:
    # The buffer keeps what the job's error log could take, no more.
    bounded = side.with_options(max_errors=3, error_log_limit=5)
    job = _new(bounded)
    with bounded.track(job.id, every_rows=1000, every_seconds=HOUR) as t:
        for row in range(500):
            t.failed({"row": row})
        assert len(t._entries) == 5
    done = _stored(conn, job.id)
    assert (done.error_count, len(done.errors), done.errors_dropped) == (500, 3, 497)
    assert done.errors_logged == 5
    # The rows the buffer could not hold are counted all the same, their reasons unknown.
    assert [(g.message, g.count, g.other) for g in bounded.error_summary(job.id)] == [
        (None, 495, True),
        (None, 5, False),
    ]


def test_a_claimed_job_is_tracked_by_its_worker(side: Any, conn: Any) -> None:
    job = _new(side)
    claimed = side.claim_next("w-1")
    with side.track(job.id, worker_id="w-1") as t:
        t.ok()
    done = _stored(conn, job.id)
    assert done.status is S.COMPLETED
    assert done.started_at == claimed.started_at
    assert done.worker_id == "w-1"


def test_a_cancelled_job_cannot_be_tracked(side: Any, conn: Any) -> None:
    job = _new(side)
    side.cancel(job.id)
    with pytest.raises(ImportJobCancelledError), side.track(job.id):
        pytest.fail("the block must not run")
    with pytest.raises(ImportJobNotFoundError), side.track(uuid.uuid4()):
        pytest.fail("the block must not run")


def test_a_bad_error_entry_is_refused_at_once(side: Any, conn: Any) -> None:
    job = _new(side)
    with side.track(job.id) as t:
        with pytest.raises(InvalidFieldError, match="error"):
            t.failed({"payload": b"bytes"})
        with pytest.raises(InvalidFieldError, match="n"):
            t.ok(-1)
        t.ok()
    done = _stored(conn, job.id)
    assert (done.processed_rows, done.error_count, done.errors) == (1, 0, [])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"every_rows": 0}, "every_rows"),
        ({"every_seconds": -1}, "every_seconds"),
        ({"every_seconds": "1"}, "every_seconds"),
        ({"heartbeat_seconds": 0}, "heartbeat_seconds"),
        ({"worker_id": "x" * 201}, "worker_id"),
    ],
)
def test_tracker_settings_are_checked(side: Any, kwargs: dict[str, Any], field: str) -> None:
    job = _new(side)
    with pytest.raises(InvalidFieldError) as caught, side.track(job.id, **kwargs):
        pytest.fail("the block must not run")
    assert caught.value.field == field
    assert side.get_by_id(job.id).status is S.PENDING


def test_a_lost_connection_is_replaced_and_the_failure_recorded(conn: Any, connect: Any) -> None:
    repo = ImportJobRepository(connect())
    job = repo.create(ImportJob(source_type="csv", filename="lost.csv"))
    with pytest.raises(RuntimeError, match="parser crashed"), track(repo, job.id) as t:
        t.ok(3)
        conn.execute("SELECT pg_terminate_backend(%s)", [repo.connection.info.backend_pid])
        raise RuntimeError("parser crashed")
    failed = _stored(conn, job.id)
    assert failed.status is S.FAILED
    assert failed.processed_rows == 3
    assert failed.errors[-1] == {"type": "RuntimeError", "message": "parser crashed"}
    repo.connection.close()  # the reconnected one is the repository's


def test_a_failure_the_job_cannot_record_keeps_the_original_exception(
    conn: Any, connect: Any
) -> None:
    repo = ImportJobRepository(connect())
    job = repo.create(ImportJob(source_type="csv", filename="lost.csv"))
    with (
        pytest.raises(RuntimeError, match="parser crashed") as caught,
        track(repo, job.id, retry_attempts=0) as t,
    ):
        t.ok()
        conn.execute("SELECT pg_terminate_backend(%s)", [repo.connection.info.backend_pid])
        raise RuntimeError("parser crashed")
    assert any("could not be marked failed" in note for note in caught.value.__notes__)
    assert _stored(conn, job.id).status is S.PROCESSING  # for rescue_stale to find


def test_the_heartbeat_keeps_a_slow_import_alive(conn: Any, connect: Any) -> None:
    repo = ImportJobRepository(connect())
    job = repo.create(ImportJob(source_type="csv", filename="slow.csv"))
    with track(repo, job.id, every_seconds=HOUR, heartbeat_seconds=0.2) as t:
        first = _stored(conn, job.id).heartbeat_at
        assert first is not None
        time.sleep(0.7)  # one very slow row
        later = _stored(conn, job.id).heartbeat_at
        assert later is not None
        assert later > first
        assert _stored(conn, job.id).worker_id == t.worker_id
        t.ok()


def test_the_heartbeat_notices_a_cancel(conn: Any, connect: Any) -> None:
    repo = ImportJobRepository(connect())
    job = repo.create(ImportJob(source_type="csv", filename="slow.csv"))
    with (
        pytest.raises(ImportJobCancelledError),
        track(repo, job.id, every_rows=1000, every_seconds=HOUR, heartbeat_seconds=0.2) as t,
    ):
        t.ok()
        ImportJobRepository(conn).cancel(job.id)
        time.sleep(0.6)
        t.ok()  # not due by rows or time: the heartbeat made it flush
        pytest.fail("the tracker did not stop")
    assert _stored(conn, job.id).processed_rows == 2


def test_the_async_heartbeat_keeps_a_slow_import_alive(conn: Any, db_url: str) -> None:
    async def slow_import() -> tuple[Any, Any]:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as aconn:
            repo = AsyncImportJobRepository(aconn)
            job = await repo.create(ImportJob(source_type="csv", filename="slow.csv"))
            async with track_async(repo, job.id, heartbeat_seconds=0.2) as t:
                first = _stored(conn, job.id).heartbeat_at
                await asyncio.sleep(0.7)
                later = _stored(conn, job.id).heartbeat_at
                await t.ok()
            return first, later

    first, later = asyncio.run(slow_import())
    assert later > first


def test_the_async_heartbeat_notices_a_cancel(conn: Any, db_url: str) -> None:
    async def cancelled_import() -> None:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as aconn:
            repo = AsyncImportJobRepository(aconn)
            job = await repo.create(ImportJob(source_type="csv", filename="slow.csv"))
            async with track_async(repo, job.id, every_seconds=HOUR, heartbeat_seconds=0.2) as t:
                ImportJobRepository(conn).cancel(job.id)
                await asyncio.sleep(0.6)
                await t.ok()
                pytest.fail("the tracker did not stop")

    with pytest.raises(ImportJobCancelledError):
        asyncio.run(cancelled_import())
