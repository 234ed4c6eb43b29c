"""Checkpoints, a file imported once, and the error budget."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import pickle
import threading
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from importjob import (
    AsyncImportJobRepository,
    Fingerprint,
    ImportJob,
    ImportJobRepository,
    ImportJobStatus,
    fingerprint,
    track,
    track_async,
)
from importjob.exceptions import (
    ErrorBudgetExceededError,
    ImportJobCancelledError,
    ImportJobStoppedError,
    InvalidFieldError,
    SourceAlreadyImportedError,
)

S = ImportJobStatus


def _job(**fields: Any) -> ImportJob:
    return ImportJob(source_type="csv", filename="pairs.csv", **fields)


def _stored(side: Any, job_id: Any) -> ImportJob:
    job: ImportJob | None = side.get_by_id(job_id)
    assert job is not None
    return job


# Checkpoints.


def test_a_flush_stores_the_checkpoint_with_the_rows_before_it(side: Any) -> None:
    job = side.create(_job())
    with side.track(job.id, every_rows=1000, every_seconds=3600) as t:
        t.ok(5)
        t.checkpoint(5)
        t.flush()
        assert (_stored(side, job.id).processed_rows, _stored(side, job.id).checkpoint) == (5, 5)
        # Rows past the latest checkpoint wait for the next one.
        t.ok(2)
        t.failed({"row": 7, "message": "bad"})
        t.flush()
        held = _stored(side, job.id)
        assert (held.processed_rows, held.error_count, held.checkpoint) == (5, 0, 5)
        assert held.errors == []
        t.checkpoint({"row": 8, "offset": 811})
        t.ok()  # after the checkpoint: waits again
        t.flush()
        moved = _stored(side, job.id)
        assert (moved.processed_rows, moved.success_count, moved.error_count) == (8, 7, 1)
        assert moved.checkpoint == {"row": 8, "offset": 811}
        assert moved.errors == [{"row": 7, "message": "bad"}]
        assert t.processed_rows == 9  # the tracker's own count has every row
    # The end flushes every row, the checkpoint stays the last one given.
    done = _stored(side, job.id)
    assert (done.status, done.processed_rows, done.checkpoint) == (
        S.COMPLETED,
        9,
        {"row": 8, "offset": 811},
    )


def test_rows_held_past_a_checkpoint_do_not_flush_on_every_row(side: Any) -> None:
    job = side.create(_job())
    with side.track(job.id, every_rows=3, every_seconds=3600) as t:
        t.ok(2)
        t.checkpoint(2)
        t.ok()  # the third row: a flush, which sends the two before the checkpoint
        assert _stored(side, job.id).processed_rows == 2
        flushed_at = _stored(side, job.id).updated_at
        t.ok()  # one held row and one new: not due until three more
        assert _stored(side, job.id).updated_at == flushed_at
        t.ok()
        t.ok()
        assert _stored(side, job.id).updated_at != flushed_at
    assert _stored(side, job.id).processed_rows == 6


def test_rows_held_past_checkpoints_flush_once_every_every_rows(side: Any) -> None:
    # A checkpoint after each flush: from the second flush on, each one sends
    # the rows up to the checkpoint before it and holds every_rows rows back.
    job = side.create(_job())
    flushes: list[tuple[int, int]] = []  # (the row that flushed, processed_rows stored)
    with side.track(job.id, every_rows=3, every_seconds=3600, heartbeat_seconds=3600) as t:
        last = _stored(side, job.id)
        for row in range(1, 16):
            t.ok()
            stored = _stored(side, job.id)
            if stored.updated_at != last.updated_at:
                flushes.append((row, stored.processed_rows))
            last = stored
            if row % 3 == 0:
                t.checkpoint(row)
    assert flushes == [(3, 3), (6, 3), (9, 6), (12, 9), (15, 12)]
    assert _stored(side, job.id).processed_rows == 15


def test_a_tracker_without_checkpoints_flushes_every_row(side: Any) -> None:
    job = side.create(_job())
    with side.track(job.id, every_rows=1000, every_seconds=3600) as t:
        t.ok(3)
        t.flush()
        stored = _stored(side, job.id)
        assert (stored.processed_rows, stored.checkpoint) == (3, None)


def test_advance_writes_keeps_and_clears_the_checkpoint(side: Any) -> None:
    job = side.create(_job())
    side.advance(job.id, 10, 10, checkpoint="page-2")
    assert _stored(side, job.id).checkpoint == "page-2"
    side.advance(job.id, 5, 5)
    assert (_stored(side, job.id).processed_rows, _stored(side, job.id).checkpoint) == (
        15,
        "page-2",
    )
    # A batch sent twice (its reply lost) moves neither counts nor checkpoint.
    side.advance(job.id, 1, 1, batch_id=("k", 1), checkpoint="page-3")
    side.advance(job.id, 1, 1, batch_id=("k", 1), checkpoint="page-3")
    side.advance(job.id, 0, 0, batch_id=("k", 1), checkpoint="page-9")
    assert (_stored(side, job.id).processed_rows, _stored(side, job.id).checkpoint) == (
        16,
        "page-3",
    )
    side.advance(job.id, checkpoint=None)
    assert _stored(side, job.id).checkpoint is None
    # Any JSON value, and the entries' statement carries it too.
    side.advance(job.id, 1, 0, 1, entries=[{"message": "x"}], checkpoint=[1, 2.5, True])
    assert _stored(side, job.id).checkpoint == [1, 2.5, True]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (object(), "JSON"),
        ({1: "a"}, "string keys"),
        (float("nan"), "NaN"),
        ("x" * 9000, "8192 bytes"),
        ({"token": "é" * 4100}, "8192 bytes"),
    ],
)
def test_a_bad_checkpoint_is_refused_and_nothing_written(side: Any, value: Any, why: str) -> None:
    job = side.create(_job())
    with pytest.raises(InvalidFieldError, match=why) as caught:
        side.advance(job.id, 1, 1, checkpoint=value)
    assert caught.value.field == "checkpoint"
    assert _stored(side, job.id).processed_rows == 0
    with pytest.raises(InvalidFieldError) as on_model:
        _job(checkpoint=value)
    assert on_model.value.field == "checkpoint"
    with side.track(job.id) as t:
        with pytest.raises(InvalidFieldError) as on_tracker:
            t.checkpoint(value)
        assert on_tracker.value.field == "checkpoint"
    assert _stored(side, job.id).checkpoint is None


def test_a_checkpoint_of_8_kib_is_taken() -> None:
    assert _job(checkpoint="x" * 8190).checkpoint == "x" * 8190  # 8,192 bytes with its quotes


def test_a_requeued_job_keeps_its_checkpoint_and_counts_and_resumes(
    side: Any, conn: psycopg.Connection[Any]
) -> None:
    job = side.create(_job(total_rows=20))
    # A first worker gets to row 7, then is lost (the process test kills one).
    side.start(job.id, "first")
    side.advance(job.id, 7, 6, 1, entries=[{"row": 7}], worker_id="first", checkpoint=7)
    conn.execute(
        "UPDATE import_job SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", [job.id]
    )
    [rescued] = side.rescue_stale(timedelta(minutes=5), requeue=True)
    assert (rescued.status, rescued.checkpoint) == (S.PENDING, 7)
    requeued = _stored(side, job.id)
    assert requeued.status is S.PENDING
    assert (requeued.processed_rows, requeued.error_count, requeued.checkpoint) == (7, 1, 7)
    claimed = side.claim_next("second")
    assert claimed is not None
    assert (claimed.id, claimed.checkpoint, claimed.processed_rows) == (job.id, 7, 7)
    with side.track(job.id, worker_id="second") as t:
        for row in range(claimed.checkpoint + 1, 21):
            t.ok()
            t.checkpoint(row)
    done = _stored(side, job.id)
    assert (done.status, done.processed_rows, done.success_count, done.error_count) == (
        S.COMPLETED,
        20,
        19,
        1,
    )
    assert done.checkpoint == 20


# A file imported once.


def test_fingerprint_of_a_path_and_of_file_objects(tmp_path: Path) -> None:
    content = b"question,answer\n" + b"q,a\n" * 300_000  # past one 1 MiB chunk
    path = tmp_path / "pairs.csv"
    path.write_bytes(content)
    expected = Fingerprint(hashlib.sha256(content).hexdigest(), len(content))
    assert fingerprint(path) == expected
    assert fingerprint(str(path)) == expected
    with path.open("rb") as file:
        assert fingerprint(file) == expected
    with path.open("rb", buffering=0) as raw:
        assert fingerprint(raw) == expected
    assert fingerprint(io.BytesIO(content)) == expected
    # From where a file object stands, to its end.
    rest = io.BytesIO(content)
    rest.seek(16)
    assert fingerprint(rest) == Fingerprint(
        hashlib.sha256(content[16:]).hexdigest(), len(content) - 16
    )
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert fingerprint(empty) == Fingerprint(hashlib.sha256(b"").hexdigest(), 0)


def test_fingerprint_streams_in_constant_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with path.open("wb") as out:
        for _ in range(64):
            out.write(os.urandom(1 << 20))
    tracemalloc.start()
    try:
        assert fingerprint(path).size == 64 << 20
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # one 1 MiB buffer, not the 64 MiB file


class _ReadOnly:
    """A file object with read() alone (a socket's, a decompressor's): no readinto."""

    def __init__(self, data: Any) -> None:
        self._data, self._at = data, 0

    def read(self, size: int) -> Any:
        chunk = self._data[self._at : self._at + size]
        self._at += size
        return chunk


def test_fingerprint_of_a_reader_without_readinto() -> None:
    content = b"q,a\n" * 500_000
    assert fingerprint(_ReadOnly(content)) == Fingerprint(  # type: ignore[arg-type]
        hashlib.sha256(content).hexdigest(), len(content)
    )
    with pytest.raises(InvalidFieldError, match="binary mode") as caught:
        fingerprint(_ReadOnly("q,a\n"))  # type: ignore[arg-type]
    assert caught.value.field == "source"


def test_fingerprint_refuses_what_is_not_a_readable_binary_file(tmp_path: Path) -> None:
    (tmp_path / "pairs.csv").write_text("q,a\n")
    cases: list[tuple[Any, str]] = [
        (tmp_path, "directory"),
        (tmp_path / "missing.csv", "no such file"),
        (io.StringIO("q,a\n"), "binary"),
        (42, "path or a binary file"),
        (tmp_path / ("x" * 5000), "cannot be read: File name too long"),
    ]
    with (tmp_path / "pairs.csv").open() as text_mode:
        cases.append((text_mode, "binary"))
        for source, why in cases:
            with pytest.raises(InvalidFieldError, match=why) as caught:
                fingerprint(source)
            assert caught.value.field == "source"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"source_sha256": "abc"}, "source_sha256"),
        ({"source_sha256": "g" * 64}, "source_sha256"),
        ({"source_sha256": 12}, "source_sha256"),
        ({"source_size": -1}, "source_size"),
        ({"source_size": 1.5}, "source_size"),
    ],
)
def test_a_malformed_fingerprint_is_refused(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        _job(**fields)
    assert caught.value.field == field


def test_a_fingerprint_is_stored_in_lowercase() -> None:
    assert Fingerprint("AB" * 32, 3).sha256 == "ab" * 32
    with pytest.raises(InvalidFieldError) as caught:
        Fingerprint("ab" * 32, -3)
    assert caught.value.field == "size"
    assert _job(source_sha256="CD" * 32).source_sha256 == "cd" * 32


def _count(conn: psycopg.Connection[Any]) -> int:
    [(n,)] = conn.execute("SELECT count(*) FROM import_job").fetchall()
    return int(n)


def test_a_file_imported_is_refused_until_its_import_fails(
    side: Any, conn: psycopg.Connection[Any]
) -> None:
    digest = "a" * 64
    first = side.create(_job(source_sha256=digest, source_size=10), unique_source=True)
    stored = _stored(side, first.id)
    assert (stored.source_sha256, stored.source_size) == (digest, 10)
    for status in (None, S.PROCESSING, S.COMPLETED):
        if status is not None:
            side.update_status(first.id, status)
        again = _job(source_sha256=digest)
        with pytest.raises(SourceAlreadyImportedError) as caught:
            side.create(again, unique_source=True)
        assert caught.value.existing_job_id == first.id
        assert caught.value.job_id == again.id
        assert side.get_by_id(again.id) is None
    assert _count(conn) == 1
    # Without unique_source, the same file is a new job (a deliberate re-import).
    forced = side.create(_job(source_sha256=digest))
    with pytest.raises(SourceAlreadyImportedError) as caught:
        side.create(_job(source_sha256=digest), unique_source=True)
    assert caught.value.existing_job_id == first.id  # the oldest of the two
    # Failed and cancelled imports do not count.
    side.cancel(forced.id)
    other = side.create(_job(source_sha256="b" * 64), unique_source=True)
    side.update_status(other.id, S.FAILED)
    retried = side.create(_job(source_sha256="b" * 64), unique_source=True)
    assert retried.source_sha256 == "b" * 64
    # A fingerprint other than the ones imported is free.
    assert side.create(_job(source_sha256="c" * 64), unique_source=True).status is S.PENDING


def test_unique_source_needs_a_fingerprint_and_a_bool(
    side: Any, conn: psycopg.Connection[Any]
) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        side.create(_job(), unique_source=True)
    assert caught.value.field == "source_sha256"
    with pytest.raises(InvalidFieldError) as caught:
        side.create(_job(source_sha256="a" * 64), unique_source="yes")
    assert caught.value.field == "unique_source"
    assert _count(conn) == 0


@pytest.mark.parametrize("first_commits", [True, False])
def test_of_two_concurrent_creates_of_one_file_exactly_one_succeeds(
    db_url: str, first_commits: bool
) -> None:
    digest = "d" * 64
    with (
        psycopg.connect(db_url) as first_conn,
        psycopg.connect(db_url, autocommit=True) as second_conn,
    ):
        first = ImportJobRepository(first_conn).create(
            _job(source_sha256=digest), unique_source=True
        )  # not committed: the second create waits on the index for it
        outcome: dict[str, Any] = {}

        def second() -> None:
            try:
                outcome["job"] = ImportJobRepository(second_conn).create(
                    _job(source_sha256=digest), unique_source=True
                )
            except SourceAlreadyImportedError as exc:
                outcome["refused"] = exc

        racer = threading.Thread(target=second)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive()  # waiting for the first transaction
        if first_commits:
            first_conn.commit()
        else:
            first_conn.rollback()
        racer.join(10)
        assert not racer.is_alive()
    if first_commits:
        assert "job" not in outcome
        assert outcome["refused"].existing_job_id == first.id
    else:
        assert "refused" not in outcome
        assert outcome["job"].source_sha256 == digest


def test_the_new_errors_pickle_and_serialize() -> None:
    job_id = ImportJob(source_type="csv", filename="p").id
    other = ImportJob(source_type="csv", filename="p").id
    imported = SourceAlreadyImportedError(job_id, "a" * 64, other)
    over = ErrorBudgetExceededError(job_id, "max_failure_rate", 0.1, 30, 200)
    for error in (imported, over):
        copy = pickle.loads(pickle.dumps(error))
        assert copy == error
        assert str(copy) == str(error)
        assert copy.to_dict() == error.to_dict()
    assert imported.to_dict() == {
        "type": "SourceAlreadyImportedError",
        "message": str(imported),
        "job_id": str(job_id),
        "source_sha256": "a" * 64,
        "existing_job_id": str(other),
    }
    assert over.to_dict() == {
        "type": "ErrorBudgetExceededError",
        "message": str(over),
        "job_id": str(job_id),
        "limit": "max_failure_rate",
        "max_failure_rate": 0.1,
        "error_count": 30,
        "processed_rows": 200,
    }
    assert isinstance(over, ImportJobStoppedError)
    assert over.status == "failed"
    assert "30 of 200 rows failed" in str(over)


# The error budget.


def test_past_max_failures_the_job_fails_and_the_worker_stops(side: Any) -> None:
    job = side.create(_job())
    with (
        pytest.raises(ErrorBudgetExceededError) as caught,
        side.track(job.id, every_rows=1, max_failures=2) as t,
    ):
        for row in range(1, 100):
            t.ok()
            t.failed({"row": row, "message": "bad"})
    assert (caught.value.limit, caught.value.allowed) == ("max_failures", 2)
    assert (caught.value.error_count, caught.value.processed_rows) == (3, 6)
    ended = _stored(side, job.id)
    assert ended.status is S.FAILED
    # Nothing counted is lost, and the reason is on the job.
    assert (ended.processed_rows, ended.success_count, ended.error_count) == (6, 3, 3)
    assert ended.errors[-1] == caught.value.to_dict()
    assert [e["row"] for e in ended.errors[:-1]] == [1, 2, 3]


def test_past_max_failure_rate_after_min_rows(side: Any) -> None:
    job = side.create(_job())
    with (
        pytest.raises(ErrorBudgetExceededError) as caught,
        side.track(job.id, every_rows=1, max_failure_rate=0.5, min_rows=10) as t,
    ):
        # Every row fails, but the rate is judged from the tenth row on.
        for row in range(1, 100):
            t.failed({"row": row, "message": "bad"})
    assert (caught.value.limit, caught.value.processed_rows) == ("max_failure_rate", 10)
    assert _stored(side, job.id).status is S.FAILED


def test_a_failure_rate_at_the_limit_goes_on(side: Any) -> None:
    job = side.create(_job())
    with side.track(job.id, every_rows=2, max_failure_rate=0.5, min_rows=0, max_failures=100) as t:
        for row in range(100):
            t.ok()
            t.failed({"row": row, "message": "half"})
    done = _stored(side, job.id)
    assert (done.status, done.error_count) == (S.COMPLETED, 100)


def test_the_budget_counts_the_job_not_the_tracker(side: Any) -> None:
    job = side.create(_job())
    side.advance(job.id, 5, 0, 5)  # failures from an earlier worker
    with pytest.raises(ErrorBudgetExceededError) as caught, side.track(job.id, max_failures=5) as t:
        t.failed({"message": "one more"})
    # Found at the flush on leaving the block: the import ends failed all the same.
    assert (caught.value.error_count, caught.value.processed_rows) == (6, 6)
    assert _stored(side, job.id).status is S.FAILED


def test_an_import_failing_on_its_own_is_not_judged_by_the_budget(side: Any) -> None:
    job = side.create(_job())
    with pytest.raises(KeyError), side.track(job.id, max_failures=0) as t:
        t.failed({"message": "bad"})
        raise KeyError("parser")
    ended = _stored(side, job.id)
    assert ended.status is S.FAILED
    assert [e["type"] for e in ended.errors if "type" in e] == ["KeyError"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_failures": -1}, "max_failures"),
        ({"max_failures": 1.5}, "max_failures"),
        ({"max_failure_rate": 0}, "max_failure_rate"),
        ({"max_failure_rate": 1.01}, "max_failure_rate"),
        ({"max_failure_rate": -0.5}, "max_failure_rate"),
        ({"max_failure_rate": True}, "max_failure_rate"),
        ({"max_failure_rate": float("nan")}, "max_failure_rate"),
        ({"min_rows": -1}, "min_rows"),
    ],
)
def test_a_bad_budget_is_refused_before_the_job_starts(
    side: Any, options: dict[str, Any], field: str
) -> None:
    job = side.create(_job())
    with pytest.raises(InvalidFieldError) as caught, side.track(job.id, **options):
        pass
    assert caught.value.field == field
    assert _stored(side, job.id).status is S.PENDING


class _CancelledMeanwhile(ImportJobRepository):
    """A repository whose job someone cancels right before it is ended (on another connection)."""

    def __init__(self, conn: psycopg.Connection[Any], other: ImportJobRepository) -> None:
        super().__init__(conn)
        self.other = other

    def update_status(self, job_id: Any, status: Any) -> ImportJob:
        self.other.cancel(job_id)
        return super().update_status(job_id, status)


class _AsyncCancelledMeanwhile(AsyncImportJobRepository):
    def __init__(self, conn: psycopg.AsyncConnection[Any], other: ImportJobRepository) -> None:
        super().__init__(conn)
        self.other = other

    async def update_status(self, job_id: Any, status: Any) -> ImportJob:
        self.other.cancel(job_id)
        return await super().update_status(job_id, status)


def test_a_job_cancelled_while_the_budget_ends_it_stays_cancelled(
    repo: ImportJobRepository, db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as own:
        job = repo.create(_job())
        racing = _CancelledMeanwhile(own, repo)
        with pytest.raises(ImportJobCancelledError), track(racing, job.id, max_failures=0) as t:
            t.failed({"message": "bad"})
    ended = repo.get_by_id(job.id)
    assert ended is not None
    assert ended.status is S.CANCELLED  # the cancel won; the worker is told so
    assert ended.errors[-1]["type"] == "ErrorBudgetExceededError"


def test_an_async_job_cancelled_while_the_budget_ends_it_stays_cancelled(
    repo: ImportJobRepository, db_url: str
) -> None:
    job = repo.create(_job())

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as own:
            racing = _AsyncCancelledMeanwhile(own, repo)
            with pytest.raises(ImportJobCancelledError):
                async with track_async(racing, job.id, max_failures=0) as t:
                    await t.failed({"message": "bad"})

    asyncio.run(run())
    ended = repo.get_by_id(job.id)
    assert ended is not None
    assert ended.status is S.CANCELLED
