"""ImportJobRepository against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import psycopg
import pytest

from importjob import (
    AsyncImportJobRepository,
    ImportJob,
    ImportJobRepository,
    ImportJobStatus,
    StatusMetrics,
)
from importjob.exceptions import (
    ImportJobExistsError,
    ImportJobNotFoundError,
    InvalidFieldError,
    InvalidStatusTransitionError,
    ParseError,
    SchemaMissingError,
)

S = ImportJobStatus
Connect = Callable[[], psycopg.Connection[Any]]


def _row(conn: psycopg.Connection[Any], job_id: uuid.UUID) -> tuple[Any, ...] | None:
    # The whole row as the database holds it, to prove a refused call changed nothing.
    return conn.execute("SELECT * FROM import_job WHERE id = %s", [job_id]).fetchone()


def _in_status(repo: ImportJobRepository, status: ImportJobStatus) -> ImportJob:
    """Return a stored job brought to ``status`` through allowed transitions."""
    job = repo.create(ImportJob(source_type="csv", filename="pairs.csv"))
    path = {
        S.PENDING: [],
        S.PROCESSING: [S.PROCESSING],
        S.COMPLETED: [S.PROCESSING, S.COMPLETED],
        S.FAILED: [S.PROCESSING, S.FAILED],
        S.CANCELLED: [S.PROCESSING, S.CANCELLED],
    }[status]
    for step in path:
        job = repo.update_status(job.id, step)
    assert job.status is status
    return job


def test_create_import_job(repo: ImportJobRepository, connect: Connect) -> None:
    job = ImportJob(source_type="json", filename="pairs.json", total_rows=1200)
    stored = repo.create(job)
    assert stored.id == job.id
    assert stored.status is S.PENDING
    assert (stored.source_type, stored.filename, stored.total_rows) == ("json", "pairs.json", 1200)
    assert stored.created_at is not None
    assert stored.updated_at == stored.created_at
    # Durable when it returns: another session sees it at once.
    assert ImportJobRepository(connect()).get_by_id(job.id) == stored


def test_create_returns_the_job_exactly_as_stored(
    repo: ImportJobRepository, connect: Connect
) -> None:
    # create reads back only what the database sets or normalizes; the rest
    # it copies from the job. Every field must equal what a read returns.
    base = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=5)))
    jobs = [
        ImportJob(source_type="csv", filename="p"),
        ImportJob(
            source_type="text",
            filename="q.txt",
            total_rows=7,
            processed_rows=3,
            success_count=2,
            error_count=1,
            # jsonb orders keys and spells numbers its own way.
            errors=[{"z": 1, "a": [1.5, 2**62, 1e300], "m": None}],
            created_at=base,
            # Set on the job, not inserted by create: the table's defaults win.
            heartbeat_at=base,
            worker_id="w",
            errors_dropped=4,
            errors_logged=5,
            checkpoint={"row": 2, "offset": 1.25e20},
            source_sha256="A" * 64,
            source_size=9,
        ),
    ]
    other = ImportJobRepository(connect())
    for job in jobs:
        for unique_source in (False, True) if job.source_sha256 else (False,):
            created = repo.create(attrs.evolve(job, id=uuid.uuid4()), unique_source=unique_source)
            read = other.get_by_id(created.id)
            assert read is not None
            assert attrs.asdict(created) == attrs.asdict(read)
            assert [type(v) for v in attrs.astuple(created)] == [
                type(v) for v in attrs.astuple(read)
            ]
            repo.update_status(created.id, S.FAILED)


def test_create_refuses_a_taken_id(repo: ImportJobRepository, new_job: ImportJob) -> None:
    repo.create(new_job)
    with pytest.raises(ImportJobExistsError) as caught:
        repo.create(new_job)
    assert caught.value.job_id == new_job.id
    assert isinstance(caught.value.__cause__, psycopg.errors.UniqueViolation)


def test_create_refuses_a_job_past_pending(repo: ImportJobRepository, conn: Any) -> None:
    done = _in_status(repo, S.COMPLETED)
    copy = ImportJob(
        source_type="csv", filename="p", status=S.COMPLETED, completed_at=done.completed_at
    )
    with pytest.raises(InvalidFieldError, match="status: a new job must be pending"):
        repo.create(copy)
    started = ImportJob(source_type="csv", filename="p", started_at=done.started_at)
    with pytest.raises(InvalidFieldError, match="started_at"):
        repo.create(started)
    with pytest.raises(InvalidFieldError, match="job: must be an ImportJob"):
        repo.create({"source_type": "csv", "filename": "p"})  # type: ignore[arg-type]
    assert conn.execute("SELECT count(*) FROM import_job").fetchone() == (1,)


def test_get_by_id(repo: ImportJobRepository, new_job: ImportJob) -> None:
    stored = repo.create(new_job)
    repo.create(ImportJob(source_type="text", filename="other.txt"))
    assert repo.get_by_id(new_job.id) == stored
    assert repo.get_by_id(str(new_job.id)) == stored


def test_get_by_id_not_found(repo: ImportJobRepository, new_job: ImportJob) -> None:
    repo.create(new_job)
    assert repo.get_by_id(uuid.uuid4()) is None


def test_get_by_id_refuses_a_malformed_id(repo: ImportJobRepository) -> None:
    with pytest.raises(InvalidFieldError, match="job_id: must be a UUID"):
        repo.get_by_id("42")


def test_update_progress(repo: ImportJobRepository, conn: Any, new_job: ImportJob) -> None:
    job = repo.create(new_job)
    repo.update_progress(job.id, processed=500, success=480, errors=20)
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert (stored.processed_rows, stored.success_count, stored.error_count) == (500, 480, 20)
    assert stored.total_rows == 1200  # unchanged unless given
    assert stored.updated_at is not None
    assert job.updated_at is not None
    assert stored.updated_at >= job.updated_at
    repo.update_progress(job.id, 600, 570, 30, total=1300)
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert (stored.total_rows, stored.processed_rows) == (1300, 600)


def test_update_progress_unknown_id(repo: ImportJobRepository) -> None:
    missing = uuid.uuid4()
    with pytest.raises(ImportJobNotFoundError) as caught:
        repo.update_progress(missing, 1, 1, 0)
    assert caught.value.job_id == missing


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((-1, 0, 0), "processed"),
        ((0, -5, 0), "success"),
        ((0, 0, -1), "errors"),
        ((1.0, 0, 0), "processed"),
        ((0, "1", 0), "success"),
        ((0, 0, 2**63), "errors"),
    ],
)
def test_update_progress_refuses_bad_counts(
    repo: ImportJobRepository, conn: Any, new_job: ImportJob, args: tuple[Any, ...], field: str
) -> None:
    job = repo.create(new_job)
    before = _row(conn, job.id)
    with pytest.raises(InvalidFieldError) as caught:
        repo.update_progress(job.id, *args)
    assert caught.value.field == field
    with pytest.raises(InvalidFieldError, match="total: must not be negative"):
        repo.update_progress(job.id, 1, 1, 0, total=-1)
    assert _row(conn, job.id) == before


def test_update_status(repo: ImportJobRepository, new_job: ImportJob) -> None:
    job = repo.create(new_job)
    started = repo.update_status(job.id, S.PROCESSING)
    assert started.status is S.PROCESSING
    assert started.started_at is not None
    assert started.completed_at is None
    finished = repo.update_status(str(job.id), "completed")
    assert finished.status is S.COMPLETED
    assert finished.completed_at is not None
    assert finished.started_at == started.started_at
    assert repo.get_by_id(job.id) == finished


ALLOWED = [(a, b) for a in S for b in a.next_statuses()]
FORBIDDEN = [(a, b) for a, b in itertools.product(S, S) if b not in a.next_statuses()]


def test_lifecycle_lists_every_pair_once() -> None:
    assert len(ALLOWED) == 6
    assert len(ALLOWED) + len(FORBIDDEN) == 25


@pytest.mark.parametrize(("source", "target"), ALLOWED, ids=str)
def test_every_allowed_transition(
    repo: ImportJobRepository, source: ImportJobStatus, target: ImportJobStatus
) -> None:
    job = _in_status(repo, source)
    changed = repo.update_status(job.id, target)
    assert changed.status is target
    assert (changed.completed_at is not None) is target.is_terminal
    if target is S.PROCESSING:
        assert changed.started_at is not None
    else:
        assert changed.started_at == job.started_at
    assert repo.get_by_id(job.id) == changed


@pytest.mark.parametrize(("source", "target"), FORBIDDEN, ids=str)
def test_every_forbidden_transition(
    repo: ImportJobRepository, conn: Any, source: ImportJobStatus, target: ImportJobStatus
) -> None:
    job = _in_status(repo, source)
    before = _row(conn, job.id)
    with pytest.raises(InvalidStatusTransitionError) as caught:
        repo.update_status(job.id, target)
    assert (caught.value.job_id, caught.value.from_status, caught.value.to_status) == (
        job.id,
        source,
        target,
    )
    assert _row(conn, job.id) == before


def test_update_status_unknown_id_or_status(repo: ImportJobRepository, conn: Any) -> None:
    with pytest.raises(ImportJobNotFoundError):
        repo.update_status(uuid.uuid4(), S.PROCESSING)
    job = repo.create(ImportJob(source_type="csv", filename="p"))
    before = _row(conn, job.id)
    with pytest.raises(InvalidFieldError, match="status: must be one of"):
        repo.update_status(job.id, "running")
    assert _row(conn, job.id) == before


def test_concurrent_transitions_cannot_both_succeed(
    repo: ImportJobRepository, connect: Connect, lock_waiters: Callable[..., None]
) -> None:
    job = _in_status(repo, S.PROCESSING)
    holder = connect()
    outcome: list[object] = []
    with holder.transaction():
        # The first transition holds the row; the second has to wait for it.
        ImportJobRepository(holder).update_status(job.id, S.COMPLETED)
        racer = threading.Thread(
            target=lambda: outcome.append(_attempt(connect(), job.id, S.CANCELLED))
        )
        racer.start()
        lock_waiters()
    racer.join(timeout=10)
    assert not racer.is_alive()
    [error] = outcome
    assert isinstance(error, InvalidStatusTransitionError)
    # The loser is told the status that beat it, not the one it saw first.
    assert error.from_status is S.COMPLETED
    final = repo.get_by_id(job.id)
    assert final is not None
    assert final.status is S.COMPLETED


class _StartedMeanwhile(ImportJobRepository):
    """A repository whose job is started on another connection right after a refusal."""

    def __init__(self, conn: psycopg.Connection[Any], other: ImportJobRepository) -> None:
        super().__init__(conn)
        self.other = other
        self.reads: list[str] = []

    def _one(self, name: str, params: Any, build: Any) -> Any:
        if name == "status_of":
            self.reads.append(name)
            if len(self.reads) == 1:
                self.other.start(params["id"], "w")
        return super()._one(name, params, build)


class _AsyncStartedMeanwhile(AsyncImportJobRepository):
    def __init__(self, conn: psycopg.AsyncConnection[Any], other: ImportJobRepository) -> None:
        super().__init__(conn)
        self.other = other
        self.reads: list[str] = []

    async def _one(self, name: str, params: Any, build: Any) -> Any:
        if name == "status_of":
            self.reads.append(name)
            if len(self.reads) == 1:
                self.other.start(params["id"], "w")
        return await super()._one(name, params, build)


def test_a_transition_refused_by_a_status_the_job_has_left_is_tried_again(
    repo: ImportJobRepository, db_url: str
) -> None:
    # PENDING refuses COMPLETED; by the time the refusal is read the job is
    # PROCESSING, which COMPLETED may leave: the transition is made, not
    # refused under a status that allows it.
    job = repo.create(ImportJob(source_type="csv", filename="p"))
    with psycopg.connect(db_url, autocommit=True) as own:
        racing = _StartedMeanwhile(own, repo)
        done = racing.update_status(job.id, S.COMPLETED)
    assert racing.reads == ["status_of"]
    assert (done.status, done.worker_id) == (S.COMPLETED, "w")
    assert done.started_at is not None
    assert done.completed_at is not None

    async def run() -> ImportJob:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as own:
            racing = _AsyncStartedMeanwhile(own, repo)
            ended = await racing.update_status(second.id, S.COMPLETED)
            assert racing.reads == ["status_of"]
            return ended

    second = repo.create(ImportJob(source_type="csv", filename="p"))
    ended = asyncio.run(run())
    assert (ended.status, ended.worker_id) == (S.COMPLETED, "w")


def _attempt(conn: psycopg.Connection[Any], job_id: uuid.UUID, status: ImportJobStatus) -> object:
    try:
        return ImportJobRepository(conn).update_status(job_id, status)
    except InvalidStatusTransitionError as exc:
        return exc


def test_list_by_status(repo: ImportJobRepository) -> None:
    pending = [repo.create(ImportJob(source_type="csv", filename=f"{i}.csv")) for i in range(5)]
    started = _in_status(repo, S.PROCESSING)
    listed = repo.list_by_status(S.PENDING, limit=10)
    assert [job.id for job in listed] == [job.id for job in pending]  # oldest first
    assert repo.list_by_status("pending", limit=2) == pending[:2]
    assert repo.list_by_status(S.PROCESSING, limit=10) == [started]
    assert repo.list_by_status(S.CANCELLED, limit=10) == []


def test_list_by_status_orders_ties_by_id(repo: ImportJobRepository, conn: Any) -> None:
    # Jobs created in one transaction share created_at; the order stays stable.
    with conn.transaction():
        jobs = [repo.create(ImportJob(source_type="csv", filename="p")) for _ in range(4)]
    assert len({job.created_at for job in jobs}) == 1
    listed = repo.list_by_status(S.PENDING, limit=4)
    assert [job.id for job in listed] == sorted(job.id for job in jobs)


@pytest.mark.parametrize("limit", [0, -1, 1.5, "10", None, True])
def test_list_by_status_refuses_bad_limit(repo: ImportJobRepository, limit: Any) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        repo.list_by_status(S.PENDING, limit=limit)
    assert caught.value.field == "limit"


def test_list_by_status_refuses_unknown_status(repo: ImportJobRepository) -> None:
    with pytest.raises(InvalidFieldError, match="status: must be one of"):
        repo.list_by_status("done", limit=1)


def test_add_error(repo: ImportJobRepository, new_job: ImportJob) -> None:
    job = repo.create(new_job)
    first = {"row": 3, "field": "question", "message": "must not be empty"}
    repo.add_error(job.id, first)
    repo.add_error(job.id, ParseError(9, "unterminated quote", raw_data='"x'))
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.errors == [
        first,
        {"type": "ParseError", "message": "unterminated quote", "line_number": 9, "raw_data": '"x'},
    ]
    assert stored.error_count == 0  # counting is update_progress's job


def test_add_error_unknown_id(repo: ImportJobRepository) -> None:
    with pytest.raises(ImportJobNotFoundError):
        repo.add_error(uuid.uuid4(), {"message": "x"})


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"message": object()}, "JSON-serializable"),
        ({"message": "a\x00b"}, "NUL"),
        ({"\x00": "a"}, "NUL"),
        ({"ratio": float("inf")}, "infinity"),
        (["not", "a", "dict"], "must be a dict"),
        ("text", "must be a dict"),
    ],
)
def test_add_error_refuses_what_jsonb_cannot_hold(
    repo: ImportJobRepository, conn: Any, new_job: ImportJob, error: Any, message: str
) -> None:
    job = repo.create(new_job)
    before = _row(conn, job.id)
    with pytest.raises(InvalidFieldError, match=message) as caught:
        repo.add_error(job.id, error)
    assert caught.value.field == "error"
    assert _row(conn, job.id) == before


def test_calls_join_the_callers_transaction(
    repo: ImportJobRepository, conn: Any, connect: Connect, new_job: ImportJob
) -> None:
    other = ImportJobRepository(connect())

    with conn.transaction(force_rollback=True):
        repo.create(new_job)
        repo.update_status(new_job.id, S.PROCESSING)
        assert repo.get_by_id(new_job.id) is not None
        assert other.get_by_id(new_job.id) is None  # not committed yet
    assert repo.get_by_id(new_job.id) is None  # rolled back with the caller's work

    with conn.transaction():
        repo.create(new_job)
        assert other.get_by_id(new_job.id) is None
    assert other.get_by_id(new_job.id) is not None


def test_hostile_text_is_stored_verbatim(repo: ImportJobRepository) -> None:
    hostile = "x'); DROP TABLE import_job; --"
    job = repo.create(ImportJob(source_type="csv", filename=hostile))
    repo.add_error(job.id, {"message": hostile, "raw": "%(id)s %s $1 \\' \""})
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.filename == hostile
    assert stored.errors == [{"message": hostile, "raw": "%(id)s %s $1 \\' \""}]


def test_connection_is_exposed(repo: ImportJobRepository, conn: Any) -> None:
    assert repo.connection is conn


def test_ping_answers_on_a_migrated_database_and_says_when_it_is_not(
    side: Any, empty_db_url: str
) -> None:
    assert side.ping() is None
    with (
        psycopg.connect(empty_db_url, autocommit=True) as empty,
        pytest.raises(SchemaMissingError, match="import_job"),
    ):
        ImportJobRepository(empty).ping()


def test_job_metrics_count_every_status(side: Any, conn: psycopg.Connection[Any]) -> None:
    empty = side.job_metrics()
    assert list(empty) == list(ImportJobStatus)
    assert empty[S.FAILED] == StatusMetrics(
        status=S.FAILED,
        jobs=0,
        processed_rows=0,
        failed_rows=0,
        skipped_rows=0,
        oldest_age_seconds=None,
        without_heartbeat=0,
    )
    pending = [side.create(ImportJob(source_type="csv", filename=f"{n}.csv")) for n in range(2)]
    running = side.create(ImportJob(source_type="csv", filename="running.csv"))
    side.start(running.id, "w")
    side.advance(running.id, 13, 8, 2, skipped=3)
    done = side.create(ImportJob(source_type="csv", filename="done.csv"))
    side.start(done.id, "w")
    side.advance(done.id, 5, 5, 0)
    side.update_status(done.id, S.COMPLETED)
    # The oldest pending job is a day old.
    conn.execute(
        "UPDATE import_job SET created_at = now() - interval '1 day' WHERE id = %s",
        [pending[0].id],
    )
    metrics = side.job_metrics()
    assert {status: m.jobs for status, m in metrics.items()} == {
        S.PENDING: 2,
        S.PROCESSING: 1,
        S.COMPLETED: 1,
        S.FAILED: 0,
        S.CANCELLED: 0,
    }
    processing = metrics[S.PROCESSING]
    assert (processing.processed_rows, processing.failed_rows, processing.skipped_rows) == (
        13,
        2,
        3,
    )
    assert metrics[S.COMPLETED].skipped_rows == 0
    assert (metrics[S.COMPLETED].processed_rows, metrics[S.COMPLETED].failed_rows) == (5, 0)
    age = metrics[S.PENDING].oldest_age_seconds
    assert age is not None
    assert 86_400 <= age < 86_400 + 60
    assert metrics[S.PROCESSING].without_heartbeat == 0
    # With no grace at all, every live job that ever started shows no life
    # since; an ended one has none to show.
    stalled = side.job_metrics(timedelta(0))
    assert stalled[S.PROCESSING].without_heartbeat == 1
    assert stalled[S.COMPLETED].without_heartbeat == 0
    assert stalled[S.PENDING].without_heartbeat == 0


def test_job_metrics_refuse_a_bad_stale_after(side: Any) -> None:
    for stale_after in (timedelta(seconds=-1), 300, None, "5 minutes"):
        with pytest.raises(InvalidFieldError) as caught:
            side.job_metrics(stale_after)
        assert caught.value.field == "stale_after"
