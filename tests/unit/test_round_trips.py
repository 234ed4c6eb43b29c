"""Each repository call is one statement in one round trip."""

from __future__ import annotations

import io
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import attrs
import psycopg
import pytest
from psycopg.pq import Trace

from importjob import ImportJob, ImportJobRepository, ImportJobStatus, track
from importjob._queries import query
from importjob._repository_base import repository_cursor
from importjob.exceptions import InvalidFieldError, InvalidStatusTransitionError
from importjob.models import COLUMNS

Call = Callable[[ImportJobRepository, ImportJob], object]


@contextmanager
def _traced(conn: psycopg.Connection[Any]) -> Iterator[list[str]]:
    """Record the libpq protocol messages the connection exchanges in the block."""
    messages: list[str] = []
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            yield messages
        finally:
            conn.pgconn.untrace()
            trace.seek(0)
            messages.extend(line.split("\t")[2].split()[0] for line in trace if "\t" in line)


def _create(repo: ImportJobRepository, job: ImportJob) -> object:
    return repo.create(ImportJob(source_type="csv", filename="p.csv"))


def _refused(repo: ImportJobRepository, job: ImportJob) -> object:
    try:
        return repo.update_status(job.id, ImportJobStatus.PENDING)
    except InvalidStatusTransitionError as exc:
        return exc


CALLS: dict[str, Call] = {
    "create": _create,
    "get_by_id": lambda repo, job: repo.get_by_id(job.id),
    "update_progress": lambda repo, job: repo.update_progress(job.id, 5, 4, 1),
    "add_error": lambda repo, job: repo.add_error(job.id, {"message": "x"}),
    "list_by_status": lambda repo, job: repo.list_by_status(ImportJobStatus.PENDING, 50),
    "advance": lambda repo, job: repo.advance(job.id, 3, 2, 1, entries=[{"message": "x"}]),
    "add_errors": lambda repo, job: repo.add_errors(job.id, [{"n": 1}, {"n": 2}]),
    "heartbeat": lambda repo, job: repo.heartbeat(job.id),
    "claim_next": lambda repo, job: repo.claim_next(),
    "start": lambda repo, job: repo.start(job.id),
    "rescue_stale": lambda repo, job: repo.rescue_stale(timedelta(hours=1)),
    "error_summary": lambda repo, job: repo.error_summary(job.id),
    # One page (the job's log is shorter than a batch): one statement.
    "iter_errors": lambda repo, job: list(repo.iter_errors(job.id)),
    "error_page": lambda repo, job: repo.error_page(job.id, after=1, limit=10),
    "ping": lambda repo, job: repo.ping(),
    "job_metrics": lambda repo, job: repo.job_metrics(),
}


@pytest.mark.parametrize("name", CALLS)
def test_one_round_trip_per_call(repo: ImportJobRepository, name: str) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="p.csv"))
    round_trips = []
    for _ in range(8):
        with _traced(repo.connection) as messages:
            CALLS[name](repo, job)
        assert messages.count("Execute") == 1, messages  # one statement
        assert messages.count("Sync") == messages.count("ReadyForQuery")
        round_trips.append(messages.count("Sync"))
    # psycopg prepares a statement on its 6th execution on a connection
    # (prepare_threshold=5), and that once it parses in a round trip of its own.
    assert round_trips.count(1) == 7, round_trips
    assert round_trips.count(2) == 1, round_trips


def test_a_transition_is_one_round_trip_and_a_refused_one_two(repo: ImportJobRepository) -> None:
    jobs = [repo.create(ImportJob(source_type="csv", filename="p.csv")) for _ in range(8)]
    round_trips = []
    for job in jobs:
        with _traced(repo.connection) as messages:
            repo.update_status(job.id, ImportJobStatus.PROCESSING)
        assert messages.count("Execute") == 1, messages
        round_trips.append(messages.count("Sync"))
    assert round_trips.count(1) == 7, round_trips
    assert round_trips.count(2) == 1, round_trips
    # Refused, the status that refused it is read by a second statement.
    for _ in range(8):
        with _traced(repo.connection) as messages:
            assert isinstance(_refused(repo, jobs[0]), InvalidStatusTransitionError)
        assert messages.count("Execute") == 2, messages
        assert messages.count("Sync") == messages.count("ReadyForQuery") >= 2


def test_add_error_is_one_round_trip_within_and_past_max_errors(
    repo: ImportJobRepository,
) -> None:
    small = ImportJobRepository(repo.connection, max_errors=8)
    job = small.create(ImportJob(source_type="csv", filename="p.csv"))
    statements = []
    for row in range(16):
        with _traced(small.connection) as messages:
            small.add_error(job.id, {"row": row})
        assert messages.count("Sync") == messages.count("ReadyForQuery")
        statements.append(messages.count("Execute"))
    assert statements == [1] * 16, statements
    assert [entry["row"] for entry in small.iter_errors(job.id)] == [*range(16)]


def test_every_statement_returning_jobs_selects_the_columns_in_model_order(
    repo: ImportJobRepository,
) -> None:
    # Rows are read by position (importjob.models.job_from_values), not by name.
    job = repo.create(ImportJob(source_type="csv", filename="p.csv"))
    params: dict[str, dict[str, Any]] = {
        "create": {
            **dict.fromkeys(("total_rows", "processed_rows", "success_count", "error_count"), 0),
            "id": uuid.uuid4(),
            "status": "pending",
            "source_type": "csv",
            "filename": "x",
            "errors": "[]",
            "created_at": None,
            "checkpoint": None,
            "source_sha256": None,
            "source_size": None,
            "owner": "o",
            "metadata": "{}",
            "skipped_count": 0,
            "outcomes": "{}",
        },
        "get_by_id": {"id": job.id},
        "list_by_status": {"status": "pending", "limit": 1},
        "list_by_status_of_owner": {"status": "pending", "limit": 1, "owner": "o"},
        "list_recent": {
            "limit": 1,
            "with_errors": False,
            "status": None,
            "owner": None,
            "metadata": None,
            "filename": None,
        },
        "update_metadata": {"id": job.id, "metadata": '{"a": 1}'},
        "watch_read": {"id": job.id},
        "watch": {"id": job.id, "ttl": timedelta(seconds=1)},
        "claim_next": {"worker_id": "w"},
        "rescue_stale": {
            "older_than": timedelta(0),
            "requeue": False,
            "max_errors": 1,
            "error_log_limit": None,
            "max_groups": 1000,
        },
    }
    conn = repo.connection
    # create returns what the database sets or normalizes, in the order
    # importjob.models.job_as_created reads them.
    created = ("errors", "checkpoint", "metadata", "outcomes", "created_at", "updated_at")
    for name, values in params.items():
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            cur.execute(query(name), values)
            assert cur.description is not None
            expected = created if name == "create" else COLUMNS
            assert tuple(column.name for column in cur.description) == expected, name
    for name in ("update_status", "start"):
        text = query(name)
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            changes: dict[str, object] = {
                "id": job.id,
                "status": "processing",
                "from_statuses": ["pending"],
                "starts": True,
                "terminal": False,
                "worker_id": "w",
            }
            cur.execute(text, changes)
            assert cur.description is not None
            names = tuple(column.name for column in cur.description)
            expected = COLUMNS if name == "update_status" else ("previous_status", *COLUMNS)
            assert names == expected, name
    # create(unique_source=True): the id of a job of the same file, or the job.
    with conn.transaction(force_rollback=True), conn.cursor() as cur:
        cur.execute(
            query("create_unique"),
            {**params["create"], "id": uuid.uuid4(), "source_sha256": "0" * 64},
        )
        assert cur.description is not None
        assert tuple(column.name for column in cur.description) == ("existing_id", *created)


def test_rows_read_by_position_equal_validated_jobs(repo: ImportJobRepository) -> None:
    job = repo.create(ImportJob(source_type="json", filename="p.json", errors=[{"a": 1}]))
    repo.start(job.id, "w")
    repo.advance(job.id, 5, 4, 1, entries=[{"row": 3}])
    stored = repo.update_status(job.id, ImportJobStatus.FAILED)
    # evolve runs every converter and validator on the values from_values set.
    assert attrs.evolve(stored) == stored
    assert stored == ImportJob.from_row(
        stored.to_dict()
        | {
            "id": stored.id,
            "started_at": stored.started_at,
            "completed_at": stored.completed_at,
            "created_at": stored.created_at,
            "updated_at": stored.updated_at,
            "heartbeat_at": stored.heartbeat_at,
        }
    )


def test_iter_errors_runs_one_statement_per_page(repo: ImportJobRepository) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="p.csv"))
    repo.add_errors(job.id, [{"row": row} for row in range(7)])
    with _traced(repo.connection) as messages:
        entries = list(repo.iter_errors(job.id, batch=3))
    assert [entry["row"] for entry in entries] == list(range(7))
    # Pages of 3, 3 and 1: the short one is the last.
    assert messages.count("Execute") == 3, messages
    assert messages.count("Sync") == messages.count("ReadyForQuery")


def test_export_errors_is_one_copy_statement(repo: ImportJobRepository) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="p.csv"))
    repo.add_errors(job.id, [{"row": row} for row in range(5)])
    for export_format in ("csv", "jsonl"):
        with _traced(repo.connection) as messages:
            assert repo.export_errors(job.id, io.BytesIO(), format=export_format) == 5
        # COPY runs as one simple query: its data streams back in the same exchange.
        assert messages.count("Query") == 1, messages
        assert messages.count("Execute") == 0, messages
        assert messages.count("ReadyForQuery") == 1, messages


@pytest.mark.parametrize(
    "value",
    [{}, [], {"a": [1, {"b": "é\u2028"}], "n": None}, [{}], [[]], "{}", 1.5, 0, True, None],
)
def test_jsonb_loads_as_the_json_decoder_does(repo: ImportJobRepository, value: Any) -> None:
    cursor = repository_cursor(repo.connection.cursor(binary=True))
    cursor.execute("SELECT %s::jsonb, %s::jsonb", [json.dumps(value), json.dumps(value)])
    first, second = cursor.fetchone() or (None, None)
    assert first == value
    assert type(first) is type(value)
    if isinstance(value, dict | list):
        assert first is not second  # never one shared empty value


def test_a_tracker_of_a_job_it_claimed_sends_no_start(repo: ImportJobRepository) -> None:
    repo.create(ImportJob(source_type="csv", filename="c.csv"))
    job = repo.claim_next("w1")
    assert job is not None
    with (
        _traced(repo.connection) as messages,
        track(repo, job.id, worker_id="w1", claimed=job) as t,
    ):
        t.ok()
    # The flush and the end: no start.
    assert messages.count("Execute") == 2, messages
    done = repo.get_by_id(job.id)
    assert done is not None
    assert (done.status, done.processed_rows) == (ImportJobStatus.COMPLETED, 1)


@pytest.mark.parametrize(
    ("rows", "checkpoint", "statements"),
    [(0, False, 1), (3, False, 1), (3, True, 2)],
)
def test_the_end_flushes_only_what_is_left(
    repo: ImportJobRepository, rows: int, checkpoint: bool, statements: int
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="c.csv"))
    tracker = track(repo, job.id, worker_id="w1")
    tracker.__enter__()
    for _ in range(rows):
        tracker.ok()
    tracker.flush()
    if checkpoint:
        tracker.checkpoint({"line": rows})  # recorded since the flush: the end sends it
    with _traced(repo.connection) as messages:
        tracker.__exit__(None, None, None)
    assert messages.count("Execute") == statements, messages
    done = repo.get_by_id(job.id)
    assert done is not None
    assert (done.status, done.processed_rows) == (ImportJobStatus.COMPLETED, rows)
    assert done.checkpoint == ({"line": rows} if checkpoint else None)


@pytest.mark.parametrize("worker", ["w1", "w2"])
def test_a_claimed_job_must_be_the_tracker_s_own(repo: ImportJobRepository, worker: str) -> None:
    repo.create(ImportJob(source_type="csv", filename="c.csv"))
    job = repo.claim_next("w1")
    assert job is not None
    other = repo.create(ImportJob(source_type="csv", filename="o.csv"))
    job_id = other.id if worker == "w1" else job.id  # another job, or another worker
    with pytest.raises(InvalidFieldError) as caught:
        track(repo, job_id, worker_id=worker, claimed=job)
    assert caught.value.field == "claimed"
