"""Section 1: each repository operation against the floor under it.

The floor is the same statement from ``sql/`` on bare psycopg (prepared,
tuple rows), on the same connection, in alternating blocks of calls; round
trips are counted from a libpq trace.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from benchmarks._harness import (
    ADVANCE_ONE_ROW,
    Call,
    Report,
    Section,
    connect,
    interleaved,
    new_jobs,
    round_trips,
    same_statement,
)
from importjob import ImportJob, ImportJobRepository, ImportJobStatus

Cases = Callable[[], tuple[Call, Call]]


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: every operation against the same statement on bare psycopg."""
    same_statement_lines(url, report, rounds=5 if quick else 15, per_round=100)


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
        floor = same_statement(conn, "create_job", "one")
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
        floor = same_statement(conn, "list_jobs_by_status", "all")
        return (
            lambda i: repo.list_by_status(ImportJobStatus.PENDING, 50),
            lambda i: floor({"status": "pending", "limit": 50}),
        )

    get_floor = same_statement(conn, "get_job", "one")
    progress_floor = same_statement(conn, "update_progress", "count")
    advance_floor = same_statement(conn, "advance", "one")
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
            lambda i: advance_floor(
                {
                    **advance_params(error_jobs[i % 500], f'[{{"row": {i}, "message": "bad"}}]'),
                    "processed": 0,
                    "success": 0,
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


SECTION = Section(name="per call", title="each operation against its floor", run=run)
