"""per-call: each repository operation against the floors under it.

Two floors. The same statement from ``sql/`` on bare psycopg (prepared, tuple
rows), on the same connection, in alternating blocks of calls: what the
layer adds in Python; round trips are counted from a libpq trace. And the
statement a user would write by hand for the seed's six operations, on a
minimal table of the seed's thirteen columns (no trigger, no CHECK, one
index besides the key), interleaved call by call with importjob's: what the
layer costs in all, schema included.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, LiteralString

import psycopg
from psycopg.types.json import Jsonb

from benchmarks._harness import (
    ADVANCE_ONE_ROW,
    Call,
    Report,
    Section,
    call_by_call,
    connect,
    interleaved,
    median_us,
    new_jobs,
    round_trips,
    same_statement,
)
from importjob import ImportJob, ImportJobRepository, ImportJobStatus

Cases = Callable[[], tuple[Call, Call]]


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: each operation against the same statement, then against the by-hand one."""
    same_statement_lines(url, report, rounds=5 if quick else 15, per_round=100)
    hand_written_lines(url, report, calls=500 if quick else 1500)


def _offset(call: Call, by: int) -> Call:
    return lambda i: call(by + i)


def same_statement_lines(url: str, report: Report, rounds: int, per_round: int) -> None:
    """Median time per call of every repository operation against its floor."""
    conn = connect(url)
    # The same connection, and so the same backend, for both sides, in
    # alternating blocks: only the client's work differs.
    repo = ImportJobRepository(conn)
    calls = rounds * per_round * 2 + 100  # warm-up, timed, round-trip check
    [job] = new_jobs(conn, 1)
    error_jobs = new_jobs(conn, 500)

    def advance_params(job_id: uuid.UUID, entries: str = "[]") -> dict[str, Any]:
        return {**ADVANCE_ONE_ROW, "id": job_id, "entries": entries}

    def create_cases() -> tuple[Call, Call]:
        jobs = [ImportJob(source_type="csv", filename="bench.csv") for _ in range(calls)]
        floor = same_statement(conn, "create", "one")
        params = [
            {
                "id": uuid.uuid4(),
                "status": "pending",
                "source_type": "csv",
                "filename": "bench.csv",
                "total_rows": 0,
                "processed_rows": 0,
                "success_count": 0,
                "error_count": 0,
                "errors": "[]",
                "created_at": None,
                "checkpoint": None,
                "source_sha256": None,
                "source_size": None,
                "owner": None,
                "metadata": "{}",
                "skipped_count": 0,
                "outcomes": "{}",
            }
            for _ in range(calls)
        ]
        return (lambda i: repo.create(jobs[i])), (lambda i: floor(params[i]))

    def status_cases() -> tuple[Call, Call]:
        ids = new_jobs(conn, calls)
        floor = same_statement(conn, "update_status", "one")
        return (
            lambda i: repo.update_status(ids[i], ImportJobStatus.CANCELLED),
            lambda i: floor(
                {
                    "id": ids[i],
                    "status": "cancelled",
                    "from_statuses": ["pending", "processing"],
                    "starts": False,
                    "terminal": True,
                }
            ),
        )

    def claim_cases() -> tuple[Call, Call]:
        conn.execute(
            "UPDATE import_job SET status = 'cancelled', completed_at = now()"
            " WHERE status = 'pending'"
        )
        new_jobs(conn, calls)
        floor = same_statement(conn, "claim_next", "one")
        return (lambda i: repo.claim_next("bench")), (lambda i: floor({"worker_id": "bench"}))

    def list_cases() -> tuple[Call, Call]:
        new_jobs(conn, 60)
        floor = same_statement(conn, "list_by_status", "all")
        return (
            lambda i: repo.list_by_status(ImportJobStatus.PENDING, 50),
            lambda i: floor({"status": "pending", "limit": 50}),
        )

    get_floor = same_statement(conn, "get_by_id", "one")
    progress_floor = same_statement(conn, "update_progress", "count")
    advance_floor = same_statement(conn, "advance", "one")
    errors_floor = same_statement(conn, "add_error", "count")
    cases: dict[str, Cases] = {
        "create": create_cases,
        "get_by_id": lambda: (
            lambda i: repo.get_by_id(job),
            lambda i: get_floor({"id": job}),
        ),
        "update_progress": lambda: (
            lambda i: repo.update_progress(job, i, i, 0),
            lambda i: progress_floor(
                {
                    "id": job,
                    "processed_rows": i,
                    "success_count": i,
                    "error_count": 0,
                    "total_rows": None,
                }
            ),
        ),
        "advance": lambda: (
            lambda i: repo.advance(job, processed=1, success=1),
            lambda i: advance_floor(advance_params(job)),
        ),
        "update_status": status_cases,
        "add_error": lambda: (
            lambda i: repo.add_error(error_jobs[i % 500], {"row": i, "message": "bad"}),
            lambda i: errors_floor(
                {
                    "id": error_jobs[i % 500],
                    "entries": f'[{{"row": {i}, "message": "bad"}}]',
                    "max_errors": 1000,
                    "error_log_limit": 1_000_000,
                    "max_groups": 1000,
                }
            ),
        ),
        "list_by_status(limit=50)": list_cases,
        "claim_next": claim_cases,
    }
    for name, make in cases.items():
        ours, floor = make()
        for i in range(20):  # past psycopg's prepare threshold on both sides
            ours(i)
            floor(i)
        ours_us, floor_us = interleaved(_offset(ours, 20), _offset(floor, 20), rounds, per_round)
        # Indexes past those the timed calls used: fresh jobs where a call needs one.
        trips = round_trips(conn, ours, 40 + rounds * per_round * 2)
        ratio = ours_us / floor_us
        report.add(
            f"{name} median, round trips {trips}",
            f"{ours_us:.1f} µs",
            f"{floor_us:.1f} µs",
            ratio=ratio,
            target="≤ 1.2x, 1 trip",
            ok=ratio <= 1.2 and trips == 1,
        )
    conn.close()


# The floor a user would write by hand: the thirteen columns a job's record
# needs, the index list_by_status needs, nothing else.
_MINIMAL_TABLE: LiteralString = """
CREATE TABLE minimal_job (
    id             uuid        PRIMARY KEY,
    status         text        NOT NULL DEFAULT 'pending',
    source_type    text        NOT NULL,
    filename       text        NOT NULL,
    total_rows     bigint      NOT NULL DEFAULT 0,
    processed_rows bigint      NOT NULL DEFAULT 0,
    success_count  bigint      NOT NULL DEFAULT 0,
    error_count    bigint      NOT NULL DEFAULT 0,
    errors         jsonb       NOT NULL DEFAULT '[]',
    started_at     timestamptz,
    completed_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX minimal_job_status ON minimal_job (status, created_at);
-- Where a hand-written importer that keeps every failed row, as add_error
-- does, puts them: one row per entry, nothing more.
CREATE TABLE minimal_job_error (
    job_id uuid   NOT NULL,
    n      bigint GENERATED ALWAYS AS IDENTITY,
    entry  jsonb  NOT NULL,
    PRIMARY KEY (job_id, n)
);
"""
_BY_HAND: dict[str, LiteralString] = {
    "create": "INSERT INTO minimal_job (id, source_type, filename, total_rows)"
    " VALUES (%s, %s, %s, %s) RETURNING *",
    "get_by_id": "SELECT * FROM minimal_job WHERE id = %s",
    "update_progress": "UPDATE minimal_job SET processed_rows = %s, success_count = %s,"
    " error_count = %s, updated_at = now() WHERE id = %s",
    "add_error": "UPDATE minimal_job SET errors = errors || %s, updated_at = now() WHERE id = %s",
    # The same capability as add_error: the entry on the job and in a log
    # of every failed row, in one statement.
    "add_error, kept": "WITH job AS (UPDATE minimal_job SET errors = errors || %(entries)s,"
    " updated_at = now() WHERE id = %(id)s RETURNING id)"
    " INSERT INTO minimal_job_error (job_id, entry) SELECT id, %(entry)s FROM job",
    "update_status": "UPDATE minimal_job SET status = %(status)s,"
    " started_at = CASE WHEN %(starts)s THEN now() ELSE started_at END,"
    " completed_at = CASE WHEN %(terminal)s THEN now() ELSE completed_at END,"
    " updated_at = now()"
    " WHERE id = %(id)s AND status = ANY (%(from_statuses)s) RETURNING *",
    "list_by_status(50)": "SELECT * FROM minimal_job WHERE status = %s"
    " ORDER BY created_at LIMIT %s",
}


def _by_hand(conn: psycopg.Connection[Any], name: str) -> Callable[[Any], object]:
    """Return the hand-written statement ``name``, prepared, as a user would run it."""
    cursor = conn.cursor()
    text = _BY_HAND[name]
    # Known here, not asked of the cursor: cursor.description builds its
    # column objects anew on every call, which costs more than a small read.
    returns_rows = name not in {"update_progress", "add_error", "add_error, kept"}

    def run(params: Any) -> object:
        cursor.execute(text, params, prepare=True)
        return cursor.fetchall() if returns_rows else cursor.rowcount

    return run


def hand_written_lines(url: str, report: Report, calls: int) -> None:
    """Time the seed's six operations against the statements a user would write by hand.

    Both tables hold the same rows (the minimal one is copied from
    import_job once every case has its jobs), and each case calls both
    sides on the same ids, one call of each in turn.
    """
    conn = connect(url)
    repo = ImportJobRepository(conn)
    warm = 20  # past psycopg's prepare threshold on importjob's side
    total = warm + calls
    [job] = new_jobs(conn, 1)
    error_jobs = new_jobs(conn, 500)
    status_jobs = new_jobs(conn, total)
    conn.execute("DROP TABLE IF EXISTS minimal_job_error, minimal_job")
    conn.execute(_MINIMAL_TABLE)
    conn.execute(
        "INSERT INTO minimal_job SELECT id, status, source_type, filename, total_rows,"
        " processed_rows, success_count, error_count, errors, started_at, completed_at,"
        " created_at, updated_at FROM import_job"
    )
    conn.execute("VACUUM ANALYZE minimal_job")
    conn.execute("VACUUM ANALYZE import_job")
    new = [ImportJob(source_type="csv", filename="bench.csv") for _ in range(total)]
    new_ids = [uuid.uuid4() for _ in range(total)]
    cancel = {
        "status": "cancelled",
        "starts": False,
        "terminal": True,
        "from_statuses": ["pending", "processing"],
    }
    by_hand = {name: _by_hand(conn, name) for name in _BY_HAND}

    def kept_by_hand(jobs: list[uuid.UUID]) -> Call:
        def run(i: int) -> object:
            entry = {"row": i, "message": "bad"}
            params = {"entries": Jsonb([entry]), "entry": Jsonb(entry), "id": jobs[i % 500]}
            return by_hand["add_error, kept"](params)

        return run

    cases: dict[str, tuple[Call, Call]] = {
        "create": (
            lambda i: repo.create(new[i]),
            lambda i: by_hand["create"]((new_ids[i], "csv", "bench.csv", 0)),
        ),
        "get_by_id": (
            lambda i: repo.get_by_id(job),
            lambda i: by_hand["get_by_id"]((job,)),
        ),
        "update_progress": (
            lambda i: repo.update_progress(job, i, i, 0),
            lambda i: by_hand["update_progress"]((i, i, 0, job)),
        ),
        "add_error": (
            lambda i: repo.add_error(error_jobs[i % 500], {"row": i, "message": "bad"}),
            lambda i: by_hand["add_error"](
                (Jsonb([{"row": i, "message": "bad"}]), error_jobs[i % 500])
            ),
        ),
        "add_error, kept": (
            lambda i: repo.add_error(error_jobs[i % 500], {"row": i, "message": "bad"}),
            kept_by_hand(error_jobs),
        ),
        "update_status": (
            lambda i: repo.update_status(status_jobs[i], ImportJobStatus.CANCELLED),
            lambda i: by_hand["update_status"]({**cancel, "id": status_jobs[i]}),
        ),
        "list_by_status(50)": (
            lambda i: repo.list_by_status(ImportJobStatus.PENDING, 50),
            lambda i: by_hand["list_by_status(50)"](("pending", 50)),
        ),
    }
    for name, (ours, floor) in cases.items():
        for i in range(warm):
            ours(i)
            floor(i)
        ours_ns, floor_ns = call_by_call(_offset(ours, warm), _offset(floor, warm), calls)
        ours_us, floor_us = median_us(ours_ns), median_us(floor_ns)
        ratio = ours_us / floor_us
        # add_error logs every entry and counts its reason: the floor that
        # does the same work by hand (the job's UPDATE and the log's INSERT
        # in one statement) is its target; the floor that only appends to
        # the job's column is printed for reference.
        reference = name == "add_error"
        report.add(
            f"{name} median vs by hand, minimal table (call by call)",
            f"{ours_us:.1f} µs",
            f"{floor_us:.1f} µs",
            ratio=ratio,
            target="for reference" if reference else "≤ 1.5x",
            ok=reference or ratio <= 1.5,
        )
    conn.execute("DROP TABLE minimal_job_error")
    conn.execute("DROP TABLE minimal_job")
    conn.close()


SECTION = Section(name="per-call", title="each operation against its floor", run=run)
