"""The benchmark suite: ``tox -e bench`` (or ``python benchmarks/bench.py``).

Measures importjob against the floor under it, in one run against one
server, and prints one table with a verdict per target (then the query
plans). Exits 1 when a target is missed. Never part of the test run: timings
do not belong in tests.

The server is the one PG* names (default 127.0.0.1:5432, user postgres); the
suite creates and drops its own database, ``importjob_bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import Trace
from rich.console import Console
from rich.table import Table

from importjob import (
    AsyncImportJobRepository,
    ImportJob,
    ImportJobRepository,
    ImportJobStatus,
    apply_migrations,
    track,
)
from importjob._queries import query

BENCH_DB = "importjob_bench"
# advance.sql's parameters for one imported row, as the repository sends them.
ADVANCE_ONE_ROW: dict[str, Any] = {
    "processed": 1,
    "success": 1,
    "errors": 0,
    "entries": "[]",
    "entries_dropped": 0,
    "max_errors": 1000,
    "worker_id": None,
    "batch_key": None,
    "batch_seq": None,
}
S = ImportJobStatus


@dataclass
class Row:
    """One line of the table: a measure, importjob's figure, the baseline's, the target."""

    section: str
    measure: str
    ours: str
    baseline: str
    ratio: float | None
    target: str
    ok: bool


@dataclass
class Report:
    """What the run found: the table's rows and the plans."""

    rows: list[Row] = field(default_factory=list)
    plans: dict[str, str] = field(default_factory=dict)

    def add(self, *args: Any) -> None:
        """Add a row and say it at once, so a long run shows where it is."""
        row = Row(*args)
        self.rows.append(row)
        mark = "ok" if row.ok else "MISSED"
        print(f"  {row.section}: {row.measure}: {row.ours} vs {row.baseline} -> {mark}", flush=True)


# The database.


def _server_params() -> dict[str, Any]:
    return {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "password": os.environ.get("PGPASSWORD") or None,
    }


def _url(dbname: str) -> str:
    p = _server_params()
    auth = p["user"] + (f":{p['password']}" if p["password"] else "")
    return f"postgresql://{auth}@/{dbname}?host={p['host']}&port={p['port']}"


def _fresh_database(name: str = BENCH_DB) -> str:
    _drop_database(name)
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _url(name)
    apply_migrations(url)
    return url


def _drop_database(name: str = BENCH_DB) -> None:
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def _new_jobs(
    conn: psycopg.Connection[Any], count: int, status: str = "pending"
) -> list[uuid.UUID]:
    """Insert ``count`` jobs in one statement; return their ids, oldest first."""
    rows = conn.execute(
        "INSERT INTO import_job"
        " (status, source_type, filename, started_at, completed_at, created_at)"
        " SELECT %(status)s, 'csv', 'bench.csv',"
        "   CASE WHEN %(status)s <> 'pending' THEN now() END,"
        "   CASE WHEN %(status)s IN ('completed', 'failed', 'cancelled') THEN now() END,"
        "   clock_timestamp()"
        " FROM generate_series(1, %(count)s) RETURNING id",
        {"status": status, "count": count},
    ).fetchall()
    return [row[0] for row in rows]


# Timing.

_ALL_CPUS = os.sched_getaffinity(0)


def _pin(*conns: Any) -> None:
    """Run this process and the connections' backends on one CPU.

    A round trip between processes on two idle virtual CPUs costs a wake-up
    that varies by a factor of three from one moment to the next, and two
    connections' backends may land differently; on one CPU the hand-off is
    steady. Used where two connections are compared (the two table sizes).
    """
    cpu = {min(_ALL_CPUS)}
    os.sched_setaffinity(0, cpu)
    for conn in conns:
        with contextlib.suppress(PermissionError, ProcessLookupError):
            os.sched_setaffinity(conn.info.backend_pid, cpu)


def _unpin() -> None:
    os.sched_setaffinity(0, _ALL_CPUS)


def _median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def _interleaved(
    ours: Callable[[int], object], floor: Callable[[int], object], rounds: int, per_round: int
) -> tuple[float, float]:
    """Return the median µs per call of ``ours`` and ``floor``, run in alternating blocks."""
    ours_ns: list[int] = []
    floor_ns: list[int] = []
    clock = time.perf_counter_ns
    index = 0
    for _ in range(rounds):
        for target, samples in ((ours, ours_ns), (floor, floor_ns)):
            for _ in range(per_round):
                started = clock()
                target(index)
                samples.append(clock() - started)
                index += 1
    return _median_us(ours_ns), _median_us(floor_ns)


@contextmanager
def _traced(conn: psycopg.Connection[Any]) -> Iterator[list[str]]:
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


def _round_trips(conn: psycopg.Connection[Any], call: Callable[[int], object], start: int) -> int:
    """Return the most round trips one of ten calls took (after the prepare)."""
    most = 0
    for i in range(10):
        with _traced(conn) as messages:
            call(start + i)
        most = max(most, messages.count("Sync"))
    return most


def _floor(conn: psycopg.Connection[Any], name: str, fetch: str) -> Callable[[dict[str, Any]], Any]:
    """Return the bare-psycopg floor: the same statement from sql/, prepared, one round trip."""
    text = query(name)
    cursor = conn.cursor()

    def run(params: dict[str, Any]) -> Any:
        cursor.execute(text, params, prepare=True)
        if fetch == "one":
            return cursor.fetchone()
        if fetch == "all":
            return cursor.fetchall()
        return cursor.rowcount

    return run


# 1. Each operation against its floor.


def _offset(call: Callable[[int], object], by: int) -> Callable[[int], object]:
    return lambda i: call(by + i)


def bench_operations(url: str, report: Report, rounds: int, per_round: int) -> None:
    """Median time per call of every repository operation against its floor."""
    conn = _connect(url)
    # The same connection, and so the same backend, for both sides, in
    # alternating blocks: only the client's work differs.
    floor_conn = conn
    repo = ImportJobRepository(conn)
    calls = rounds * per_round * 2 + 100  # warm-up, timed, round-trip check
    [job] = _new_jobs(conn, 1)
    error_jobs = _new_jobs(conn, 500)

    def advance_params(job_id: uuid.UUID, entries: str = "[]") -> dict[str, Any]:
        return {**ADVANCE_ONE_ROW, "id": job_id, "entries": entries}

    def create_cases() -> tuple[Callable[[int], object], Callable[[int], object]]:
        jobs = [ImportJob(source_type="csv", filename="bench.csv") for _ in range(calls)]
        floor = _floor(floor_conn, "create_job", "one")
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

    def status_cases() -> tuple[Callable[[int], object], Callable[[int], object]]:
        ids = _new_jobs(conn, calls)
        floor = _floor(floor_conn, "update_status", "one")
        return (
            lambda i: repo.update_status(ids[i], S.CANCELLED),
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

    def claim_cases() -> tuple[Callable[[int], object], Callable[[int], object]]:
        conn.execute(
            "UPDATE import_job SET status = 'cancelled', completed_at = now()"
            " WHERE status = 'pending'"
        )
        _new_jobs(conn, calls)
        floor = _floor(floor_conn, "claim_next", "one")
        return (lambda i: repo.claim_next("bench")), (lambda i: floor({"worker_id": "bench"}))

    def list_cases() -> tuple[Callable[[int], object], Callable[[int], object]]:
        _new_jobs(conn, 60)
        floor = _floor(floor_conn, "list_jobs_by_status", "all")
        return (
            lambda i: repo.list_by_status(S.PENDING, 50),
            lambda i: floor({"status": "pending", "limit": 50}),
        )

    get_floor = _floor(floor_conn, "get_job", "one")
    progress_floor = _floor(floor_conn, "update_progress", "count")
    advance_floor = _floor(floor_conn, "advance", "one")
    cases: dict[str, Callable[[], tuple[Callable[[int], object], Callable[[int], object]]]] = {
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
        ours_us, floor_us = _interleaved(_offset(ours, 20), _offset(floor, 20), rounds, per_round)
        # Indexes past those the timed calls used: fresh jobs where a call needs one.
        trips = _round_trips(conn, ours, 40 + rounds * per_round * 2)
        ratio = ours_us / floor_us
        report.add(
            "1 per call",
            f"{name} median, round trips {trips}",
            f"{ours_us:.1f} µs",
            f"{floor_us:.1f} µs",
            ratio,
            "≤ 1.2x, 1 trip",
            ratio <= 1.2 and trips == 1,
        )
    conn.close()


# 2. The tracker's own cost.


class _CountingRepository(ImportJobRepository):
    writes = 0

    def advance(self, *args: Any, **kwargs: Any) -> ImportJobStatus:
        self.writes += 1
        return super().advance(*args, **kwargs)


def bench_tracker(url: str, report: Report, rows: int) -> None:
    """Measure what the tracker adds per row over an empty loop, and how often it writes."""
    conn = _connect(url)
    repo = _CountingRepository(conn)
    job = repo.create(ImportJob(source_type="csv", filename="million.csv", total_rows=rows))
    started = time.perf_counter()
    for _ in range(rows):
        pass
    empty = time.perf_counter() - started
    started = time.perf_counter()
    with track(repo, job.id, every_rows=1000, every_seconds=1.0) as t:
        ok = t.ok
        for _ in range(rows):
            ok()
    tracked = time.perf_counter() - started
    per_row_us = (tracked - empty) / rows * 1e6
    allowed_writes = rows // 1000 + int(tracked / 1.0) + 1
    stored = repo.get_by_id(job.id)
    if stored is None:
        raise RuntimeError("the tracked job vanished")
    report.add(
        "2 tracker",
        f"{rows:,} rows, nothing per row: added per row",
        f"{per_row_us:.3f} µs",
        f"{empty / rows * 1e6:.3f} µs empty loop",
        None,
        "≤ 1 µs",
        per_row_us <= 1.0 and stored.processed_rows == rows,
    )
    report.add(
        "2 tracker",
        "writes (flushes) during those rows",
        f"{repo.writes}",
        f"{allowed_writes} allowed",
        None,
        "≤ rows/1000 + s/1",
        repo.writes <= allowed_writes,
    )
    conn.close()


# 3. Flat in table size.


def _fill(conn: psycopg.Connection[Any], total: int, pending: int = 0) -> None:
    """Add ``pending`` pending jobs and long-finished ones until the table holds ``total``."""
    with conn.transaction():
        # Bulk history, not changes anyone watches: skip the notify trigger.
        conn.execute("SET LOCAL session_replication_role = replica")
        if pending:
            _new_jobs(conn, pending)
        have = conn.execute("SELECT count(*) FROM import_job").fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO import_job (status, source_type, filename, total_rows, processed_rows,"
            "  success_count, started_at, completed_at, created_at, updated_at)"
            " SELECT 'completed', 'csv', 'old.csv', 1000, 1000, 1000,"
            "   now() - g * interval '1 minute', now() - g * interval '1 minute',"
            "   now() - g * interval '1 minute', now()"
            " FROM generate_series(1, %s) AS g",
            [max(0, total - have)],
        )
    conn.execute("VACUUM ANALYZE import_job")


def _ignore_index(call: Callable[[], object]) -> Callable[[int], object]:
    return lambda _: call()


def _size_calls(url: str) -> dict[str, Callable[[], object]]:
    conn = _connect(url)
    _pin(conn)
    repo = ImportJobRepository(conn)
    [known] = conn.execute("SELECT id FROM import_job ORDER BY random() LIMIT 1").fetchone()  # type: ignore[misc]
    return {
        "get_by_id": lambda: repo.get_by_id(known),
        "list_by_status(limit=50)": lambda: repo.list_by_status(S.PENDING, 50),
        "claim_next": lambda: repo.claim_next("bench"),
    }


def _plans(url: str, report: Report) -> None:
    conn = _connect(url)
    [known] = conn.execute("SELECT id FROM import_job LIMIT 1").fetchone()  # type: ignore[misc]
    statements = {
        "get_by_id": ("get_job", {"id": known}),
        "list_by_status(limit=50)": ("list_jobs_by_status", {"status": "pending", "limit": 50}),
        "claim_next": ("claim_next", {"worker_id": "bench"}),
        "list_recent(limit=50)": ("list_jobs_newest", {"limit": 50}),
        "rescue_stale": (
            "rescue_stale",
            {"older_than": timedelta(minutes=5), "requeue": False, "max_errors": 1000},
        ),
    }
    for name, (statement, params) in statements.items():
        with conn.transaction(force_rollback=True):
            text = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + query(statement)
            plan = conn.execute(text, params).fetchall()
        report.plans[name] = "\n".join(line for (line,) in plan)
    conn.close()


def bench_table_size(url: str, report: Report, small: int, large: int, samples: int) -> None:
    """Measure get_by_id, list_by_status and claim_next at ``small`` jobs and at ``large``.

    Two databases, measured in alternating blocks, so that drift on the
    machine falls on both sizes alike.
    """
    small_url = _fresh_database(BENCH_DB + "_small")
    try:
        pending = samples * 2  # the same queue at both sizes; only the history differs
        with _connect(small_url) as conn:
            _fill(conn, small, pending=pending)
        with _connect(url) as conn:
            conn.execute("TRUNCATE import_job")
            _fill(conn, large, pending=pending)
        at_small, at_large = _size_calls(small_url), _size_calls(url)
        for name in at_small:
            small_us, large_us = _interleaved(
                _ignore_index(at_small[name]), _ignore_index(at_large[name]), 10, samples // 10
            )
            ratio = large_us / small_us
            report.add(
                "3 table size",
                f"{name} at {large:,} vs {small:,} jobs",
                f"{large_us:.1f} µs",
                f"{small_us:.1f} µs",
                ratio,
                "≤ 1.3x",
                ratio <= 1.3,
            )
    finally:
        _unpin()
        _drop_database(BENCH_DB + "_small")
    _plans(url, report)


# 4. Many workers.


def _advance_worker(url: str, job_id: uuid.UUID, start_at: float, end_at: float, out: Any) -> None:
    """Call advance on one job until ``end_at``, through importjob and bare psycopg in turn.

    Puts (calls, seconds) for each side on ``out``.
    """
    conn = _connect(url)
    text = query("advance")
    cursor = conn.cursor()
    params = {**ADVANCE_ONE_ROW, "id": job_id}
    repo = ImportJobRepository(conn)

    def floor_call() -> None:
        cursor.execute(text, params, prepare=True)
        cursor.fetchone()

    def ours_call() -> None:
        repo.advance(job_id, processed=1, success=1)

    for _ in range(20):
        floor_call()
        ours_call()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    sides = {"ours": [0, 0], "floor": [0, 0]}  # calls, nanoseconds
    clock = time.perf_counter_ns
    block = 0
    while time.monotonic() < end_at:
        name, call = ("ours", ours_call) if block % 2 else ("floor", floor_call)
        started = clock()
        for _ in range(20):
            call()
        sides[name][1] += clock() - started
        sides[name][0] += 20
        block += 1
    out.put({name: (calls, ns / 1e9) for name, (calls, ns) in sides.items()})
    conn.close()


def _throughput(url: str, jobs: list[uuid.UUID], seconds: float) -> tuple[float, float]:
    """Return the aggregate calls per second through importjob and through bare psycopg."""
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    start_at = time.monotonic() + 3.0  # time for every process to start and warm up
    end_at = start_at + seconds
    workers = [
        spawn.Process(target=_advance_worker, args=(url, job, start_at, end_at, out))
        for job in jobs
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join()
    # Each process's rate on each side, summed: what all of them reach together.
    ours = sum(calls / took for calls, took in (r["ours"] for r in results))
    floor = sum(calls / took for calls, took in (r["floor"] for r in results))
    return ours, floor


def _pgbench(url: str, jobs: list[uuid.UUID], seconds: float) -> float | None:
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        return None
    params = _server_params()
    with _connect(url) as conn, tempfile.TemporaryDirectory() as scratch:
        # pgbench takes no bound parameters: render the same statement with
        # literals, each client on its own job through :client_id.
        conn.execute("CREATE TABLE IF NOT EXISTS bench_client (n int PRIMARY KEY, id uuid)")
        conn.execute("TRUNCATE bench_client")
        for n, job in enumerate(jobs):
            conn.execute("INSERT INTO bench_client VALUES (%s, %s)", [n, job])
        text = query("advance")
        for name, value in ADVANCE_ONE_ROW.items():
            text = text.replace(f"%({name})s", sql.Literal(value).as_string(conn))
        text = text.replace("%(id)s", "(SELECT id FROM bench_client WHERE n = :client_id)")
        text = " ".join(line.split("--")[0] for line in text.splitlines())
        script = os.path.join(scratch, "advance.sql")
        with open(script, "w") as f:
            f.write(text.strip() + "\n")
        env = {**os.environ, "PGPASSWORD": params["password"] or ""}
        done = subprocess.run(  # noqa: S603 - pgbench, with arguments built here
            [
                pgbench,
                "-n",
                "-M",
                "prepared",
                "-c",
                str(len(jobs)),
                "-j",
                str(os.cpu_count() or 2),
                "-T",
                str(int(seconds)),
                "-f",
                script,
                "-h",
                params["host"],
                "-p",
                str(params["port"]),
                "-U",
                params["user"],
                BENCH_DB,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    if not found:
        print(done.stdout, done.stderr, file=sys.stderr)
        return None
    return float(found.group(1))


def bench_workers(url: str, report: Report, workers: int, seconds: float) -> None:
    """Aggregate advance calls per second from ``workers`` processes, each on its own job."""
    conn = _connect(url)
    jobs = _new_jobs(conn, workers)
    # The sections before leave dirty pages (a 1,000,000-row table): write
    # them out now, not in the middle of one side's measurement.
    conn.execute("CHECKPOINT")
    conn.close()
    # Every process alternates blocks of 20 calls through importjob and
    # through bare psycopg, so both sides see the same server, the same
    # commit queue and the same neighbours, and drift falls on both alike.
    ours, floor = _throughput(url, jobs, seconds)
    ratio = ours / floor
    report.add(
        "4 workers",
        f"{workers} processes, advance on {workers} jobs: calls/s (paired blocks)",
        f"{ours:,.0f}/s",
        f"{floor:,.0f}/s",
        ratio,
        "≥ 0.9x",
        ratio >= 0.9,
    )
    ceiling = _pgbench(url, jobs, seconds)
    report.add(
        "4 workers",
        f"pgbench, {workers} clients, the same UPDATE (server ceiling)",
        "-" if ceiling is None else f"{ceiling:,.0f}/s",
        f"{floor:,.0f}/s",
        None if ceiling is None else floor / ceiling,
        "for reference",
        True,
    )


# 5. Errors at scale.


def _failing_import(url: str, failures: int) -> tuple[float, int, int, int]:
    conn = _connect(url)
    repo = ImportJobRepository(conn)
    job = repo.create(ImportJob(source_type="csv", filename="bad.csv", total_rows=failures))
    started = time.perf_counter()
    with track(repo, job.id, every_rows=1000, every_seconds=1.0) as t:
        for row in range(failures):
            t.failed({"row": row, "field": "answer", "message": "must not be empty", "value": ""})
    took = time.perf_counter() - started
    size, kept, dropped = conn.execute(
        "SELECT pg_column_size(errors), jsonb_array_length(errors), errors_dropped"
        " FROM import_job WHERE id = %s",
        [job.id],
    ).fetchone()  # type: ignore[misc]
    conn.close()
    return took, size, kept, dropped


def bench_errors(url: str, report: Report) -> None:
    """10,000 failed rows against 1,000, through the tracker on one job."""
    small = min((_failing_import(url, 1_000) for _ in range(3)), key=lambda r: r[0])
    large = min((_failing_import(url, 10_000) for _ in range(3)), key=lambda r: r[0])
    ratio = large[0] / small[0]
    report.add(
        "5 errors",
        "10,000 failed rows vs 1,000: time",
        f"{large[0] * 1000:.0f} ms",
        f"{small[0] * 1000:.0f} ms",
        ratio,
        "≤ 12x",
        ratio <= 12,
    )
    report.add(
        "5 errors",
        f"errors column after 10,000 ({large[2]} kept, {large[3]} dropped)",
        f"{large[1]:,} B",
        f"{small[1]:,} B after 1,000",
        large[1] / small[1],
        "bounded",
        large[2] == 1000 and large[1] <= small[1] * 1.05,
    )


# 6. Async.


def bench_async(url: str, report: Report, samples: int) -> None:
    """Measure the async repository against the sync one, and 64 watchers beside an import.

    Sync and async calls need two connections, whose backends the kernel
    places independently: ten fresh pairs, each measured in alternating
    blocks, so placement averages out.
    """
    conn = _connect(url)
    job = ImportJobRepository(conn).create(ImportJob(source_type="csv", filename="async.csv"))
    text = query("get_job")
    loop = asyncio.new_event_loop()
    results = ("sync", "async", "sync floor", "async floor")
    pairs_medians: list[dict[str, float]] = []
    own: dict[str, list[float]] = {"sync": [], "async": []}

    async def timed(call: Callable[[], Any], count: int) -> list[int]:
        times = []
        for _ in range(count):
            started = time.perf_counter_ns()
            await call()
            times.append(time.perf_counter_ns() - started)
        return times

    def sync_timed(call: Callable[[], Any], count: int) -> list[int]:
        times = []
        for _ in range(count):
            started = time.perf_counter_ns()
            call()
            times.append(time.perf_counter_ns() - started)
        return times

    block = 100
    pairs = 10
    for _ in range(pairs):
        sconn = _connect(url)
        repo = ImportJobRepository(sconn)
        floor_cursor = sconn.cursor()
        aconn = loop.run_until_complete(psycopg.AsyncConnection.connect(url, autocommit=True))
        arepo = AsyncImportJobRepository(aconn)
        afloor = aconn.cursor()
        pair: dict[str, list[int]] = {name: [] for name in results}

        async def afloor_call(cursor: Any = afloor) -> None:
            await cursor.execute(text, {"id": job.id}, prepare=True)
            await cursor.fetchone()

        def floor_call(cursor: Any = floor_cursor) -> None:
            cursor.execute(text, {"id": job.id}, prepare=True)
            cursor.fetchone()

        for _ in range(max(1, samples // block // pairs)):
            blocks = {
                "sync": sync_timed(functools.partial(repo.get_by_id, job.id), block),
                "async": loop.run_until_complete(
                    timed(functools.partial(arepo.get_by_id, job.id), block)
                ),
                "sync floor": sync_timed(floor_call, block),
                "async floor": loop.run_until_complete(timed(afloor_call, block)),
            }
            for name, times in blocks.items():
                pair[name] += times
            # Neighbouring blocks share the connection's placement, so their
            # difference is the library's cost without the placement noise.
            for mode in ("sync", "async"):
                own[mode].append(_median_us(blocks[mode]) - _median_us(blocks[f"{mode} floor"]))
        sconn.close()
        loop.run_until_complete(aconn.close())
        pairs_medians.append({name: _median_us(times) for name, times in pair.items()})
    loop.close()
    # Each pair's two backends sit where the kernel put them, so timings
    # pooled over pairs mix regimes (~30 µs or ~100 µs a round trip here):
    # the ratio is taken within each pair, and its median over the pairs given.
    medians = {name: statistics.median(m[name] for m in pairs_medians) for name in results}
    ratio = statistics.median(m["async"] / m["sync"] for m in pairs_medians)
    report.add(
        "6 async",
        f"get_by_id median, async vs sync (median of {pairs} connection pairs)",
        f"{medians['async']:.1f} µs",
        f"{medians['sync']:.1f} µs",
        ratio,
        "≤ 1.2x",
        ratio <= 1.2,
    )
    report.add(
        "6 async",
        "the same statement, bare psycopg: AsyncConnection vs Connection",
        f"{medians['async floor']:.1f} µs",
        f"{medians['sync floor']:.1f} µs",
        statistics.median(m["async floor"] / m["sync floor"] for m in pairs_medians),
        "for reference",
        True,
    )
    # What importjob itself adds to a call in each mode: the part of the
    # ratio the library owns, the rest being the driver's asyncio wait.
    report.add(
        "6 async",
        "importjob's own cost per call beyond the driver: async vs sync",
        f"{statistics.median(own['async']):.1f} µs",
        f"{statistics.median(own['sync']):.1f} µs",
        None,
        "for reference",
        True,
    )
    conn.close()
    _bench_watchers(url, report)


def _bench_watchers(url: str, report: Report) -> None:
    """Time a tracked import alone and beside 64 async watchers, five times each."""
    alone: list[float] = []
    watched: list[float] = []
    for round_ in range(5):
        # Alternating which goes first, so a drift falls on both.
        for watchers in (0, 64) if round_ % 2 == 0 else (64, 0):
            (watched if watchers else alone).append(_tracked_import(url, watchers))
    ratio = statistics.median(watched) / statistics.median(alone)
    report.add(
        "6 async",
        "tracked import with 64 async watchers polling get_by_id every 1 s",
        f"{statistics.median(watched):.2f} s",
        f"{statistics.median(alone):.2f} s alone",
        ratio,
        "≤ 1.1x",
        ratio <= 1.1,
    )


def _poll(url: str, job_id: uuid.UUID, watchers: int, ready: Any, stop: Any) -> None:
    async def main() -> None:
        connections = [
            await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(watchers)
        ]

        async def watcher(aconn: psycopg.AsyncConnection[Any], offset: float) -> None:
            arepo = AsyncImportJobRepository(aconn)
            await asyncio.sleep(offset)
            while not stop.is_set():
                await arepo.get_by_id(job_id)
                await asyncio.sleep(1.0)

        ready.set()
        await asyncio.gather(*(watcher(c, i / watchers) for i, c in enumerate(connections)))
        for aconn in connections:
            await aconn.close()

    asyncio.run(main())


def _tracked_import(url: str, watchers: int, rows: int = 1_000_000) -> float:
    conn = _connect(url)
    repo = ImportJobRepository(conn)
    job = repo.create(ImportJob(source_type="csv", filename="watched.csv", total_rows=rows))
    spawn = multiprocessing.get_context("spawn")
    ready, stop = spawn.Event(), spawn.Event()
    poller = None
    if watchers:
        poller = spawn.Process(target=_poll, args=(url, job.id, watchers, ready, stop))
        poller.start()
        ready.wait(60)
        time.sleep(1.0)
    started = time.perf_counter()
    with track(repo, job.id, every_rows=1000, every_seconds=1.0) as t:
        for row in range(rows):
            # A little work per row, as a parser's, so the import takes seconds.
            hashlib.blake2b(b"%d" % row).digest()
            t.ok()
    took = time.perf_counter() - started
    stop.set()
    if poller is not None:
        poller.join(30)
    conn.close()
    return took


# The table.


def _machine() -> str:
    with _connect(_url("postgres")) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, psycopg {psycopg.__version__}, "
        f"PostgreSQL {version} at {_server_params()['host']}"
    )


def print_report(report: Report, machine: str) -> None:
    """Print the table, then the plans."""
    console = Console(width=160)
    table = Table(title=f"importjob benchmarks — {machine}", title_justify="left")
    for column in ("", "measure", "importjob", "baseline", "ratio", "target", ""):
        table.add_column(column)
    for row in report.rows:
        table.add_row(
            row.section,
            row.measure,
            row.ours,
            row.baseline,
            "" if row.ratio is None else f"{row.ratio:.2f}",
            row.target,
            "ok" if row.ok else "[bold red]MISSED[/]",
        )
    console.print(table)
    for name, plan in report.plans.items():
        console.print(f"\n[bold]EXPLAIN ANALYZE {name}[/] (at the large table)")
        console.print(plan, markup=False, highlight=False)


def main() -> int:
    """Run every section, print the table, return 1 when a target was missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="Smaller sizes, for a smoke run.")
    parser.add_argument(
        "--only",
        type=int,
        action="append",
        choices=range(1, 7),
        metavar="N",
        help="Run section N only (repeatable), to look at one measure again.",
    )
    args = parser.parse_args()
    quick = args.quick
    sections: list[tuple[str, Callable[[str, Report], None]]] = [
        (
            "1. each operation against its floor",
            lambda url, report: bench_operations(
                url, report, rounds=5 if quick else 15, per_round=100
            ),
        ),
        (
            "2. tracker overhead",
            lambda url, report: bench_tracker(url, report, rows=100_000 if quick else 1_000_000),
        ),
        (
            "3. flat in table size",
            lambda url, report: bench_table_size(
                url, report, 10_000, 50_000 if quick else 1_000_000, samples=300 if quick else 2000
            ),
        ),
        (
            "4. many workers",
            lambda url, report: bench_workers(
                url, report, workers=16, seconds=3.0 if quick else 15.0
            ),
        ),
        ("5. errors at scale", bench_errors),
        (
            "6. async",
            lambda url, report: bench_async(url, report, samples=500 if quick else 3000),
        ),
    ]
    url = _fresh_database()
    report = Report()
    try:
        for number, (title, run) in enumerate(sections, start=1):
            if args.only and number not in args.only:
                continue
            print(title, flush=True)
            run(url, report)
        print_report(report, _machine())
    finally:
        _drop_database()
    return 0 if all(row.ok for row in report.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
