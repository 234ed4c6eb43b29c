"""table-size: the reads and the claim stay flat as the table grows; and their plans."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg

from benchmarks._harness import (
    BENCH_DB,
    Call,
    Report,
    Section,
    connect,
    drop_database,
    fresh_database,
    interleaved,
    new_jobs,
    pin,
    unpin,
)
from importjob import ImportJobRepository, ImportJobStatus
from importjob._queries import query


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: 10,000 jobs against 1,000,000 (50,000 when quick)."""
    table_size_lines(
        url, report, 10_000, 50_000 if quick else 1_000_000, samples=300 if quick else 2000
    )


# The owner whose jobs a list reads: the same 100 at both sizes, among the
# jobs of OWNERS others at the large one.
OWNER = "tenant-bench"
OWNERS = 10_000


def _fill(conn: psycopg.Connection[Any], total: int, pending: int = 0) -> None:
    """Add ``pending`` pending jobs and long-finished ones until the table holds ``total``.

    The pending ones go round 100 owners. The finished ones belong to
    `OWNERS` owners, 100 of them to `OWNER`, and carry metadata: a dataset
    of 1,000 and an upload number.
    """
    with conn.transaction():
        if pending:  # through the triggers, which give each its round of claims
            new_jobs(conn, pending, owners=100)
        # Bulk history, not changes anyone watches: skip the notify trigger.
        conn.execute("SET LOCAL session_replication_role = replica")
        have = conn.execute("SELECT count(*) FROM import_job").fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO import_job (status, source_type, filename, total_rows, processed_rows,"
            "  success_count, started_at, completed_at, created_at, updated_at, owner, metadata)"
            " SELECT 'completed', 'csv', 'old.csv', 1000, 1000, 1000,"
            "   now() - g * interval '1 minute', now() - g * interval '1 minute',"
            "   now() - g * interval '1 minute', now(),"
            "   CASE WHEN g %% (%(total)s / 100) = 0 THEN %(owner)s"
            "        ELSE 'owner-' || (g %% %(owners)s) END,"
            "   jsonb_build_object('dataset', 'ds-' || (g %% 1000), 'upload', g)"
            " FROM generate_series(1, %(rows)s) AS g",
            {"rows": max(0, total - have), "total": total, "owner": OWNER, "owners": OWNERS},
        )
        # The triggers were off: count the ended jobs as a restore would.
        conn.execute(_RECOUNT)
    conn.execute("VACUUM ANALYZE import_job")


_RECOUNT = """
DELETE FROM import_job_ended_change;
DELETE FROM import_job_ended_count;
INSERT INTO import_job_ended_count
SELECT status, count(*),
       coalesce(sum(processed_rows) FILTER (WHERE chunks IS NULL), 0),
       coalesce(sum(error_count) FILTER (WHERE chunks IS NULL), 0),
       coalesce(sum(skipped_count) FILTER (WHERE chunks IS NULL), 0)
  FROM import_job WHERE status IN ('completed', 'failed', 'cancelled') GROUP BY status;
"""
# What job_metrics did before the ended jobs were counted as they end: the
# scan of the whole table, for the line that compares them.
_SCAN = (
    "SELECT status, count(*), sum(processed_rows) FILTER (WHERE chunks IS NULL),"
    " sum(error_count) FILTER (WHERE chunks IS NULL),"
    " sum(skipped_count) FILTER (WHERE chunks IS NULL), min(created_at),"
    " count(*) FILTER (WHERE coalesce(heartbeat_at, started_at) < now() - interval '5 min')"
    " FROM import_job GROUP BY status"
)


def _ignore_index(call: Callable[[], object]) -> Call:
    return lambda _: call()


def _size_calls(url: str) -> dict[str, Callable[[], object]]:
    conn = connect(url)
    pin(conn)
    repo = ImportJobRepository(conn)
    [known] = conn.execute("SELECT id FROM import_job ORDER BY random() LIMIT 1").fetchone()  # type: ignore[misc]
    return {
        "get_by_id": lambda: repo.get_by_id(known),
        "list_by_status(limit=50)": lambda: repo.list_by_status(ImportJobStatus.PENDING, 50),
        "list_recent(owner=..., limit=50)": lambda: repo.list_recent(limit=50, owner=OWNER),
        "claim_next": lambda: repo.claim_next("bench"),
        "job_metrics": repo.job_metrics,
        "count_by_status()": repo.count_by_status,
        "count_by_status(owner=...)": lambda: repo.count_by_status(owner=OWNER),
        "list_recent(owner=..., filename=old, limit=50)": lambda: repo.list_recent(
            limit=50, owner=OWNER, filename="old"
        ),
    }


# The bound of each line: an owner's list reads through one more index level.
_TARGETS = {"list_recent(owner=..., limit=50)": 1.5}


_RECENT = {
    "status": None,
    "owner": None,
    "metadata": None,
    "filename": None,
    "limit": 50,
    "with_errors": False,
}


def _plans(url: str, report: Report) -> None:
    conn = connect(url)
    [known] = conn.execute("SELECT id FROM import_job LIMIT 1").fetchone()  # type: ignore[misc]
    statements = {
        "get_by_id": ("get_by_id", {"id": known}),
        "list_by_status(limit=50)": ("list_by_status", {"status": "pending", "limit": 50}),
        "claim_next": ("claim_next", {"worker_id": "bench"}),
        "job_metrics": ("job_metrics", {"stale_after": timedelta(minutes=5)}),
        "list_recent(limit=50)": ("list_recent", {**_RECENT, "limit": 50}),
        "list_recent(owner=..., limit=50)": ("list_recent", {**_RECENT, "owner": OWNER}),
        "list_recent(metadata={dataset: ds-7}, limit=50)": (
            "list_recent",
            {**_RECENT, "metadata": '{"dataset": "ds-7"}'},
        ),
        "list_recent(filename=old, limit=50)": ("list_recent", {**_RECENT, "filename": "old"}),
        "count_by_status()": (
            "count_by_status",
            {"owner": None, "at_most": 10_000, "statuses": [s.value for s in ImportJobStatus]},
        ),
        "rescue_stale": (
            "rescue_stale",
            {
                "older_than": timedelta(minutes=5),
                "requeue": False,
                "max_errors": 1000,
                "error_log_limit": 1_000_000,
                "max_groups": 1000,
            },
        ),
    }
    for name, (statement, params) in statements.items():
        with conn.transaction(force_rollback=True):
            text = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + query(statement)
            # Unprepared, as the repository runs list_recent: planned for its filters.
            plan = conn.execute(text, params, prepare=False).fetchall()
        report.plans[name] = "\n".join(line for (line,) in plan)
    conn.close()


def table_size_lines(url: str, report: Report, small: int, large: int, samples: int) -> None:
    """Measure get_by_id, list_by_status and claim_next at ``small`` jobs and at ``large``.

    Two databases, measured in alternating blocks, so that drift on the
    machine falls on both sizes alike.
    """
    small_url = fresh_database(BENCH_DB + "_small")
    try:
        pending = samples * 2  # the same queue at both sizes; only the history differs
        with connect(small_url) as conn:
            _fill(conn, small, pending=pending)
        with connect(url) as conn:
            # The error log and its reasons reference the jobs: they go too.
            conn.execute("TRUNCATE import_job, import_job_error, import_job_error_group")
            _fill(conn, large, pending=pending)
        at_small, at_large = _size_calls(small_url), _size_calls(url)
        for name in at_small:
            small_us, large_us = interleaved(
                _ignore_index(at_small[name]), _ignore_index(at_large[name]), 10, samples // 10
            )
            ratio = large_us / small_us
            bound = _TARGETS.get(name, 1.3)
            report.add(
                f"{name} at {large:,} vs {small:,} jobs",
                f"{large_us:.1f} µs",
                f"{small_us:.1f} µs",
                ratio=ratio,
                target=f"≤ {bound}x",
                ok=ratio <= bound,
            )
            if name == "job_metrics":
                _metrics_line(url, report, large, large_us, samples)
        _rare_filename_line(url, report, large, samples)
    finally:
        unpin()
        drop_database(BENCH_DB + "_small")
    _plans(url, report)


def _metrics_line(url: str, report: Report, large: int, metrics_us: float, samples: int) -> None:
    """job_metrics at ``large`` jobs, against the scan it replaced."""
    with connect(url) as conn:
        runs = max(5, samples // 100)
        scans = [_timed(lambda: conn.execute(_SCAN).fetchall()) for _ in range(runs)]
    scan_us = statistics.median(scans)
    report.add(
        f"job_metrics (/metrics) at {large:,} jobs vs the scan of the table it replaced",
        f"{metrics_us / 1000:.2f} ms",
        f"{scan_us / 1000:.1f} ms",
        ratio=metrics_us / scan_us,
        target="≤ 50 ms",
        ok=metrics_us <= 50_000,
    )


def _rare_filename_line(url: str, report: Report, large: int, samples: int) -> None:
    """list_recent(filename=...) over every owner, for a name no job has: what it reads."""
    with connect(url) as conn:
        repo = ImportJobRepository(conn)
        runs = max(5, samples // 100)
        rare = statistics.median(
            _timed(lambda: repo.list_recent(limit=50, filename="no-such-name")) for _ in range(runs)
        )
        common = statistics.median(
            _timed(lambda: repo.list_recent(limit=50, filename="old")) for _ in range(runs)
        )
    report.add(
        f"list_recent(filename=a name no job has) at {large:,} jobs vs a common name",
        f"{rare / 1000:.1f} ms",
        f"{common / 1000:.2f} ms",
        ratio=rare / common,
        target="none: reads every job",
        ok=True,
    )


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / 1000


SECTION = Section(name="table-size", title="flat in table size", run=run)
