"""Chunked imports: a parent read as the sum of its chunks, and an end that happens exactly once."""

from __future__ import annotations

import collections
import contextlib
import csv
import io
import json
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from importjob import Chunk, ImportJob, ImportJobRepository, ImportJobStatus, track
from importjob.exceptions import (
    ErrorBudgetExceededError,
    ImportJobCancelledError,
    ImportJobExistsError,
    ImportJobStoppedError,
    ImportValidationError,
    InvalidFieldError,
    InvalidStatusTransitionError,
    ParseError,
)

S = ImportJobStatus


def _parent(**fields: Any) -> ImportJob:
    return ImportJob(source_type="json", filename="pairs.json", **fields)


def _count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM import_job").fetchone()
    assert row is not None
    return int(row[0])


def _read(repo: ImportJobRepository, job_id: Any) -> ImportJob:
    job = repo.get_by_id(job_id)
    assert job is not None
    return job


def test_create_chunked_stores_a_parent_and_its_chunks_in_order(side: Any) -> None:
    parent, children = side.create_chunked(
        _parent(owner="tenant-1", metadata={"upload": 7}),
        [Chunk(100, {"rows": [0, 100]}), Chunk(50, {"rows": [100, 150]}), Chunk(0)],
    )
    assert (parent.total_rows, parent.chunks, parent.parent_id) == (150, 3, None)
    assert [c.chunk_index for c in children] == [0, 1, 2]
    assert [c.chunk for c in children] == [{"rows": [0, 100]}, {"rows": [100, 150]}, None]
    assert [c.total_rows for c in children] == [100, 50, 0]
    for child in children:
        assert child.parent_id == parent.id
        assert (child.source_type, child.filename) == (parent.source_type, parent.filename)
        assert (child.owner, child.metadata, child.chunks) == ("tenant-1", {"upload": 7}, None)
    assert side.children(parent.id) == children
    assert side.get_by_id(parent.id) == parent
    assert side.children(children[0].id) == []


def test_workers_claim_the_chunks_never_the_parent(side: Any) -> None:
    parent, children = side.create_chunked(_parent(), [Chunk(1), Chunk(1)])
    claimed = [side.claim_next("w1"), side.claim_next("w2"), side.claim_next("w3")]
    # The chunks of one import, created together, are claimed in no set order.
    assert {c.id for c in claimed if c} == {c.id for c in children}
    assert claimed[2] is None
    assert side.get_by_id(parent.id).status is S.PROCESSING


def test_the_parent_reads_as_the_sum_of_its_chunks(side: Any) -> None:
    parent, (first, second) = side.create_chunked(_parent(), [Chunk(10), Chunk(10)])
    assert side.get_by_id(parent.id).status is S.PENDING
    side.start(first.id, "w1")
    side.advance(first.id, 6, 4, 1, skipped=1, outcomes={"created": 3, "duplicate": 1})
    side.start(second.id, "w2")
    side.advance(second.id, 3, 3, 0, outcomes={"created": 2, "updated": 1})
    read = side.get_by_id(parent.id)
    assert read.status is S.PROCESSING
    assert read.started_at is not None
    counts = (read.processed_rows, read.success_count, read.error_count, read.skipped_count)
    assert (read.total_rows, *counts) == (20, 9, 7, 1, 1)
    assert read.outcomes == {"created": 5, "duplicate": 1, "updated": 1}
    # One row an import in the lists: the parent, not its chunks.
    assert [j.id for j in side.list_recent(limit=10)] == [parent.id]
    assert [j.id for j in side.list_by_status(S.PROCESSING)] == [parent.id]
    assert [j.processed_rows for j in side.list_recent(limit=10)] == [9]


def test_the_parent_ends_with_its_last_chunk_and_that_chunk_is_told(side: Any) -> None:
    parent, children = side.create_chunked(_parent(), [Chunk(2), Chunk(2), Chunk(2)])
    told = []
    for child in children:
        with side.track(child.id, every_rows=1) as t:
            t.ok(2, outcome="created")
        told.append(t.ended_import)
        if child is not children[-1]:
            assert side.get_by_id(parent.id).status is S.PROCESSING
    assert told[:2] == [None, None]
    ended = told[2]
    assert ended is not None
    assert ended.id == parent.id
    assert (ended.status, ended.processed_rows, ended.outcomes) == (
        S.COMPLETED,
        6,
        {"created": 6},
    )
    assert ended == side.get_by_id(parent.id)
    assert ended.completed_at is not None


def test_a_failed_chunk_fails_the_import_at_once_and_cancels_the_chunks_not_started(
    side: Any,
) -> None:
    parent, (a, b, _c) = side.create_chunked(_parent(), [Chunk(1), Chunk(1), Chunk(1)])
    side.start(b.id, "w2")
    with pytest.raises(RuntimeError), side.track(a.id) as t:
        raise RuntimeError("the embedding service is down")
    assert t.ended_import is not None
    assert t.ended_import.status is S.FAILED
    assert side.get_by_id(parent.id).status is S.FAILED
    # Every chunk not ended is cancelled with it: a running one's worker
    # hears it at its next flush, which still counts what it carries.
    assert [j.status for j in side.children(parent.id)] == [S.FAILED, S.CANCELLED, S.CANCELLED]
    assert side.advance(b.id, 1, 1, 0) is S.CANCELLED
    read = side.get_by_id(parent.id)
    assert (read.status, read.processed_rows) == (S.FAILED, 1)


def test_a_chunk_s_worker_stops_at_its_next_flush_once_its_import_failed(side: Any) -> None:
    parent, (a, b) = side.create_chunked(_parent(), [Chunk(5), Chunk(5)])
    with pytest.raises(ImportJobCancelledError), side.track(b.id, every_rows=1) as t:
        t.ok()
        side.start(a.id, "w1")
        side.update_status(a.id, S.FAILED)
        t.ok()
        t.ok()  # pragma: no cover - the flush before stopped the import
    assert t.ended_import is None
    assert [j.status for j in side.children(parent.id)] == [S.FAILED, S.CANCELLED]
    assert [j.processed_rows for j in side.children(parent.id)] == [0, 2]
    assert side.get_by_id(parent.id).processed_rows == 2


def test_a_plain_job_s_flush_never_cancels_it(side: Any) -> None:
    job = side.create(_parent())
    side.start(job.id, "w1")
    assert side.advance(job.id, 1, 1, 0) is S.PROCESSING


def test_the_sums_stay_exact_through_every_move_of_every_chunk(
    repo: ImportJobRepository, conn: psycopg.Connection[Any]
) -> None:
    # Every way a chunk's counts or status can change, in a random order:
    # after each, the parent reads as the exact sums of its chunks.
    rng = random.Random(7)  # noqa: S311 - a reproducible order, not a secret
    parent, _ = repo.create_chunked(
        _parent(), [Chunk(rng.randrange(50)) for _ in range(6)], keep_going=True
    )

    def stale(job: ImportJob) -> None:
        conn.execute(
            "UPDATE import_job SET heartbeat_at = now() - interval '1 hour' WHERE id = %s",
            (job.id,),
        )
        repo.rescue_stale(timedelta(minutes=5), requeue=rng.random() < 0.7)

    moves: list[Callable[[ImportJob], object]] = [
        lambda job: repo.start(job.id, "w"),
        lambda job: repo.advance(
            job.id, 3, 1, 1, skipped=1, outcomes={rng.choice("abc"): 2}, entries=[{"row": 1}]
        ),
        lambda job: repo.update_progress(job.id, 9, 5, 4, total=rng.randrange(60)),
        lambda job: repo.add_error(job.id, {"type": "ParseError", "message": "bad"}),
        lambda job: repo.update_status(job.id, rng.choice([S.COMPLETED, S.FAILED])),
        stale,
        lambda job: repo.cancel(job.id),
    ]
    for _ in range(300):
        job = rng.choice(repo.children(parent.id))
        # A move the job's status refuses changes nothing.
        with contextlib.suppress(InvalidStatusTransitionError, ImportJobStoppedError):
            rng.choice(moves)(job)
        chunks = repo.children(parent.id)
        read = _read(repo, parent.id)
        for name in (
            "total_rows",
            "processed_rows",
            "success_count",
            "error_count",
            "skipped_count",
            "errors_logged",
            "errors_dropped",
        ):
            assert getattr(read, name) == sum(getattr(c, name) for c in chunks), name
        summed: collections.Counter[str] = collections.Counter()
        for chunk in chunks:
            summed.update(chunk.outcomes)
        assert read.outcomes == dict(summed)


def test_the_metrics_count_a_chunked_import_s_rows_once(repo: ImportJobRepository) -> None:
    _, (a, b) = repo.create_chunked(_parent(), [Chunk(5), Chunk(5)])
    repo.start(a.id, "w1")
    repo.advance(a.id, 4, 3, 1, skipped=0)
    repo.update_status(a.id, S.COMPLETED)
    repo.start(b.id, "w2")
    repo.advance(b.id, 2, 1, 0, skipped=1)
    metrics = repo.job_metrics()
    assert (metrics[S.COMPLETED].processed_rows, metrics[S.COMPLETED].failed_rows) == (4, 1)
    # The parent (processing) counts as a job, its rows on its chunks only.
    assert metrics[S.PROCESSING].jobs == 2
    assert metrics[S.PROCESSING].processed_rows == 2
    assert metrics[S.PROCESSING].skipped_rows == 1


def test_with_keep_going_the_import_fails_once_all_chunks_ended(side: Any) -> None:
    parent, (a, b) = side.create_chunked(_parent(), [Chunk(1), Chunk(1)], keep_going=True)
    assert parent.keep_going
    side.start(a.id, "w1")
    side.update_status(a.id, S.FAILED)
    assert side.get_by_id(parent.id).status is S.PROCESSING
    side.start(b.id, "w2")
    side.update_status(b.id, S.COMPLETED)
    assert side.get_by_id(parent.id).status is S.FAILED


def test_cancel_of_the_parent_cancels_every_chunk_not_ended(side: Any) -> None:
    parent, (a, b, _c) = side.create_chunked(_parent(), [Chunk(1), Chunk(1), Chunk(1)])
    side.start(a.id, "w1")
    side.update_status(a.id, S.COMPLETED)
    side.start(b.id, "w2")
    cancelled = side.cancel(parent.id)
    assert cancelled.status is S.CANCELLED
    assert cancelled.completed_at is not None
    assert [j.status for j in side.children(parent.id)] == [S.COMPLETED, S.CANCELLED, S.CANCELLED]


def test_an_ended_parent_refuses_a_cancel_as_any_ended_job(side: Any) -> None:
    parent, (a,) = side.create_chunked(_parent(), [Chunk(1)])
    side.start(a.id, "w1")
    side.update_status(a.id, S.COMPLETED)
    with pytest.raises(InvalidStatusTransitionError):
        side.cancel(parent.id)
    assert side.get_by_id(parent.id).status is S.COMPLETED


def test_the_status_of_a_parent_is_its_chunks_to_move(side: Any) -> None:
    parent, _ = side.create_chunked(_parent(), [Chunk(1)])
    with pytest.raises(InvalidFieldError) as caught:
        side.update_status(parent.id, S.PROCESSING)
    assert caught.value.field == "status"
    assert side.get_by_id(parent.id).status is S.PENDING


def test_of_chunks_ending_at_once_exactly_one_ends_the_import(
    conn: psycopg.Connection[Any], connect: Any
) -> None:
    repo = ImportJobRepository(conn)
    parent, children = repo.create_chunked(_parent(), [Chunk(1) for _ in range(16)])
    trackers: list[Any] = []
    barrier = threading.Barrier(len(children))

    def work(child: ImportJob) -> None:
        with track(ImportJobRepository(connect()), child.id, every_rows=1) as t:
            t.ok()
            barrier.wait()
        trackers.append(t)

    threads = [threading.Thread(target=work, args=(child,)) for child in children]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    told = [t.ended_import for t in trackers if t.ended_import is not None]
    assert len(trackers) == 16
    assert len(told) == 1
    assert told[0].status is S.COMPLETED
    assert told[0].processed_rows == 16
    assert repo.get_by_id(parent.id) == told[0]


def test_a_requeued_chunk_keeps_the_import_going(repo: ImportJobRepository, conn: Any) -> None:
    parent, (a,) = repo.create_chunked(_parent(), [Chunk(4)])
    repo.start(a.id, "w1")
    repo.advance(a.id, 2, 2, 0, checkpoint={"row": 2})
    conn.execute(
        "UPDATE import_job SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", (a.id,)
    )
    assert [j.id for j in repo.rescue_stale(timedelta(minutes=5), requeue=True)] == [a.id]
    assert _read(repo, parent.id).status is S.PROCESSING
    again = repo.claim_next("w2")
    assert again is not None
    assert again.id == a.id
    assert again.checkpoint == {"row": 2}
    assert _read(repo, parent.id).processed_rows == 2


def test_purge_keeps_the_chunks_of_a_live_import(repo: ImportJobRepository, conn: Any) -> None:
    parent, (a, _b) = repo.create_chunked(_parent(), [Chunk(1), Chunk(1)])
    repo.start(a.id, "w1")
    repo.update_status(a.id, S.COMPLETED)
    conn.execute(
        "UPDATE import_job SET completed_at = now() - interval '2 days' WHERE id = %s", (a.id,)
    )
    assert repo.purge_finished(timedelta(days=1)) == 0
    repo.cancel(parent.id)
    conn.execute("UPDATE import_job SET completed_at = now() - interval '2 days'")
    assert repo.purge_finished(timedelta(days=1)) == 3
    assert _count(conn) == 0


@pytest.mark.parametrize(
    ("chunks", "field"),
    [
        ([], "chunks"),
        ("not a list", "chunks"),
        ([{"total_rows": 1}], "chunks"),
        (None, "chunks"),
    ],
)
def test_bad_chunks_are_refused_naming_them_and_nothing_is_written(
    repo: ImportJobRepository, conn: Any, chunks: Any, field: str
) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        repo.create_chunked(_parent(), chunks)
    assert caught.value.field == field
    assert _count(conn) == 0


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Chunk(-1), "total_rows"),
        (lambda: Chunk(1, {"big": "x" * 9000}), "spec"),
        (lambda: Chunk(1, {"set": {1, 2}}), "spec"),
        (lambda: Chunk(1, float("nan")), "spec"),
    ],
)
def test_a_bad_chunk_is_refused_naming_its_field(make: Any, field: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        make()
    assert caught.value.field == field


def test_a_parent_with_counts_or_an_existing_id_is_refused(
    repo: ImportJobRepository, conn: Any
) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        repo.create_chunked(_parent(processed_rows=1), [Chunk(1)])
    assert caught.value.field == "processed_rows"
    with pytest.raises(InvalidFieldError) as caught:
        repo.create_chunked(_parent(), [Chunk(1)], keep_going="yes")  # type: ignore[arg-type]
    assert caught.value.field == "keep_going"
    existing = repo.create(_parent())
    with pytest.raises(ImportJobExistsError):
        repo.create_chunked(_parent(id=existing.id), [Chunk(1), Chunk(2)])
    assert _count(conn) == 1


def test_error_summary_of_a_parent_sums_its_chunks_reasons(side: Any) -> None:
    parent, (a, b) = side.create_chunked(_parent(), [Chunk(3), Chunk(3)])
    for chunk, rows in ((a, (1, 2)), (b, (1,))):
        with side.track(chunk.id, every_rows=1) as t:
            for row in rows:
                t.failed(ImportValidationError(row, "answer", "must not be empty"))
            t.failed(ParseError(9, f"bad quote in {chunk.chunk_index}"))
    groups = {(g.type, g.message): g.count for g in side.error_summary(parent.id)}
    assert groups == {
        ("ImportValidationError", "must not be empty"): 3,
        ("ParseError", "bad quote in 0"): 1,
        ("ParseError", "bad quote in 1"): 1,
    }
    assert side.get_by_id(parent.id).error_count == 5
    assert [g.count for g in side.error_summary(a.id)] == [2, 1]


def test_export_errors_of_a_parent_holds_every_chunk_s_entries_in_chunk_order(
    side: Any,
) -> None:
    parent, (a, b, c) = side.create_chunked(_parent(), [Chunk(3), Chunk(3), Chunk(3)])
    # Recorded out of chunk order: the export orders them by chunk, then by
    # each chunk's recording order.
    for chunk, rows in ((c, (7, 8)), (a, (2, 1)), (b, ())):
        with side.track(chunk.id, every_rows=1) as t:
            for row in rows:
                t.failed(ImportValidationError(row, "answer", f"empty in {chunk.chunk_index}"))
    jsonl = io.BytesIO()
    assert side.export_errors(parent.id, jsonl, format="jsonl") == 4
    entries = [json.loads(line) for line in jsonl.getvalue().splitlines()]
    assert [(e["row"], e["message"]) for e in entries] == [
        (2, "empty in 0"),
        (1, "empty in 0"),
        (7, "empty in 2"),
        (8, "empty in 2"),
    ]
    out = io.BytesIO()
    assert side.export_errors(parent.id, out) == 4
    lines = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert [(line["n"], line["row"]) for line in lines] == [
        ("1", "2"),
        ("2", "1"),
        ("3", "7"),
        ("4", "8"),
    ]
    # A chunk's own export is its log alone, numbered as recorded.
    own = io.BytesIO()
    assert side.export_errors(c.id, own) == 2
    assert [line["n"] for line in csv.DictReader(io.StringIO(own.getvalue().decode()))] == [
        "1",
        "2",
    ]


def test_a_chunk_in_the_middle_of_a_flush_is_cancelled_once_it_committed(
    repo: ImportJobRepository, connect: Any, lock_waiters: Callable[..., None]
) -> None:
    parent, (a, b) = repo.create_chunked(_parent(), [Chunk(5), Chunk(5)])
    repo.start(a.id, "w1")
    repo.start(b.id, "w2")
    flushing = connect()
    with flushing.transaction():
        # b's flush holds b's row, as any flush does for a moment.
        flushing.execute(
            "UPDATE import_job SET processed_rows = processed_rows + 1 WHERE id = %s", (b.id,)
        )
        failing = threading.Thread(
            target=lambda: ImportJobRepository(connect()).update_status(a.id, S.FAILED)
        )
        failing.start()
        lock_waiters(1)
    failing.join()
    assert [j.status for j in repo.children(parent.id)] == [S.FAILED, S.CANCELLED]
    read = _read(repo, parent.id)
    assert (read.status, read.processed_rows) == (S.FAILED, 1)


def test_a_chunk_starting_while_its_import_fails_is_cancelled_without_a_deadlock(
    repo: ImportJobRepository, connect: Any, lock_waiters: Callable[..., None]
) -> None:
    parent, (a, b) = repo.create_chunked(_parent(), [Chunk(5), Chunk(5)])
    repo.start(a.id, "w1")
    holding = connect()
    with holding.transaction():
        # Hold the parent, so that a's failure, then b's start, queue for it:
        # the failure, holding the parent, then finds b held by its start.
        holding.execute("SELECT FROM import_job WHERE id = %s FOR NO KEY UPDATE", (parent.id,))
        failing = threading.Thread(
            target=lambda: ImportJobRepository(connect()).update_status(a.id, S.FAILED)
        )
        failing.start()
        lock_waiters(1)
        started: list[ImportJob] = []
        starting = threading.Thread(
            target=lambda: started.append(ImportJobRepository(connect()).start(b.id, "w2"))
        )
        starting.start()
        lock_waiters(2)
    failing.join()
    starting.join()
    # The start went through, and found its import failed: b is cancelled,
    # so its worker stops at its first flush.
    assert started[0].status is S.PROCESSING
    assert [j.status for j in repo.children(parent.id)] == [S.FAILED, S.CANCELLED]
    assert repo.advance(b.id, 1, 1, 0) is S.CANCELLED
    assert _read(repo, parent.id).status is S.FAILED


def test_a_chunk_over_its_error_budget_fails_and_fails_the_import(side: Any) -> None:
    parent, (a, _b) = side.create_chunked(_parent(), [Chunk(10), Chunk(10)])
    with pytest.raises(ErrorBudgetExceededError), side.track(a.id, max_failures=1) as t:
        for row in range(10):
            t.failed(ImportValidationError(row, "answer", "must not be empty"))
    assert t.ended_import is not None
    assert t.ended_import.status is S.FAILED
    chunks = side.children(parent.id)
    assert [c.status for c in chunks] == [S.FAILED, S.CANCELLED]
    # The budget counts the chunk's own rows: its flushes up to the refusal.
    assert side.get_by_id(parent.id).error_count == chunks[0].error_count >= 2
