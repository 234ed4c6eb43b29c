"""A reply lost after the commit: a flush sent again is counted once.

The connection goes through `LossyProxy`, which lets the statement commit,
throws its reply away and cuts the connection, as a network failure between
the server and the worker would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
from importjob.exceptions import ImportJobDatabaseError, ImportValidationError

S = ImportJobStatus
HOUR = 3600.0
ENTRY = {"row": 7, "field": "answer", "message": "must not be empty"}
# A flush every 100 rows, and no idle heartbeat whose reply the proxy could lose instead.
EVERY_100: dict[str, Any] = {"every_rows": 100, "every_seconds": HOUR, "heartbeat_seconds": HOUR}


@pytest.fixture
def repo(lossy: Any) -> Iterator[ImportJobRepository]:
    """A repository whose connections go through the proxy; closed whatever happens."""
    repo = ImportJobRepository(psycopg.connect(lossy.url, autocommit=True))
    yield repo
    repo.connection.close()  # the last one: reconnect closed those before


def _stored(conn: psycopg.Connection[Any], job: ImportJob) -> ImportJob:
    stored = ImportJobRepository(conn).get_by_id(job.id)
    assert stored is not None
    return stored


def _counts(job: ImportJob) -> tuple[int, int, int, int]:
    return job.processed_rows, job.success_count, job.error_count, len(job.errors)


def _lose_reply_of(proxy: Any, call: Any) -> None:
    """Run ``call`` with its reply lost; check the statement had committed."""
    proxy.lose_next_reply()
    with pytest.raises(ImportJobDatabaseError) as caught:
        call()
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    assert len(proxy.lost) == 1  # the whole reply, up to ReadyForQuery: committed


def test_without_a_batch_id_a_retry_counts_again(conn: Any, lossy: Any, repo: Any) -> None:
    # The window the batch id closes: advance alone is at least once.
    job = repo.create(ImportJob(source_type="csv", filename="twice.csv"))
    _lose_reply_of(lossy, lambda: repo.advance(job.id, 100, 99, 1))
    assert _counts(_stored(conn, job)) == (100, 99, 1, 0)
    repo.reconnect()
    repo.advance(job.id, 100, 99, 1)
    assert _counts(_stored(conn, job)) == (200, 198, 2, 0)


def test_a_batch_sent_again_after_a_lost_reply_counts_once(
    conn: Any, lossy: Any, repo: Any
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="once.csv"))
    batch = {"entries": [ENTRY], "batch_id": ("worker-a", 1)}
    _lose_reply_of(lossy, lambda: repo.advance(job.id, 100, 99, 1, **batch))
    assert _counts(_stored(conn, job)) == (100, 99, 1, 1)
    repo.reconnect()
    assert repo.advance(job.id, 100, 99, 1, **batch) is S.PENDING
    assert _counts(_stored(conn, job)) == (100, 99, 1, 1)
    assert lossy.connections == 2


def test_a_tracked_import_is_exact_when_a_flush_reply_is_lost(
    conn: Any, lossy: Any, repo: Any
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="lossy.csv"))
    with track(repo, job.id, **EVERY_100, retry_delay=0.01) as t:
        for row in range(1, 1001):
            if row == 350:
                lossy.lose_next_reply()  # the flush at row 400 commits, then its reply is lost
            if row % 10 == 0:
                t.failed(ImportValidationError(row, "answer", "must not be empty"))
            else:
                t.ok()
    assert len(lossy.lost) == 1
    assert lossy.connections == 2  # the tracker went on over a new connection
    done = _stored(conn, job)
    assert done.status is S.COMPLETED
    assert _counts(done) == (1000, 900, 100, 100)
    assert [entry["row"] for entry in done.errors] == list(range(10, 1001, 10))


def test_skipped_rows_and_outcomes_count_once_when_a_flush_reply_is_lost(
    conn: Any, lossy: Any, repo: Any
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="lossy.csv"))
    with track(repo, job.id, **EVERY_100, retry_delay=0.01) as t:
        for row in range(1, 1001):
            if row == 350:
                lossy.lose_next_reply()
            if row % 10 == 0:
                t.failed(ImportValidationError(row, "answer", "must not be empty"))
            elif row % 10 == 1:
                t.skipped("duplicate")
            else:
                t.ok(outcome="created" if row % 2 else "updated")
    assert len(lossy.lost) == 1
    done = _stored(conn, job)
    assert (done.processed_rows, done.success_count, done.error_count, done.skipped_count) == (
        1000,
        800,
        100,
        100,
    )
    assert done.outcomes == {"created": 400, "updated": 400, "duplicate": 100}


def test_an_async_tracked_import_is_exact_when_a_flush_reply_is_lost(conn: Any, lossy: Any) -> None:
    job = ImportJobRepository(conn).create(ImportJob(source_type="csv", filename="lossy.csv"))

    async def run() -> None:
        repo = AsyncImportJobRepository(
            await psycopg.AsyncConnection.connect(lossy.url, autocommit=True)
        )
        try:
            await _import_async(repo)
        finally:
            await repo.connection.close()

    async def _import_async(repo: AsyncImportJobRepository) -> None:
        async with track_async(repo, job.id, **EVERY_100, retry_delay=0.01) as t:
            for row in range(1, 1001):
                if row == 350:
                    lossy.lose_next_reply()
                if row % 10 == 0:
                    await t.failed(ImportValidationError(row, "answer", "must not be empty"))
                else:
                    await t.ok()

    asyncio.run(run())
    assert len(lossy.lost) == 1
    assert lossy.connections == 2
    done = _stored(conn, job)
    assert done.status is S.COMPLETED
    assert _counts(done) == (1000, 900, 100, 100)


def test_a_worker_that_goes_on_after_a_failed_flush_loses_and_doubles_nothing(
    conn: Any, lossy: Any, repo: Any
) -> None:
    # No retries: the flush's error reaches the worker, which reconnects and
    # goes on. The batch that failed is sent again first, with its number.
    job = repo.create(ImportJob(source_type="csv", filename="goes-on.csv"))
    with track(repo, job.id, **EVERY_100, retry_attempts=0) as t:
        t.ok(50)
        lossy.lose_next_reply()
        with pytest.raises(ImportJobDatabaseError, match="100 rows and 0 error entries"):
            t.ok(50)
        assert _stored(conn, job).processed_rows == 100  # committed, not acknowledged
        assert t.unflushed == 100
        repo.reconnect()
        t.ok(30)
        assert (t.processed_rows, t.unflushed) == (130, 130)
    done = _stored(conn, job)
    assert done.status is S.COMPLETED
    assert (done.processed_rows, done.success_count) == (130, 130)
