"""What every section of the benchmark suite shares.

The bench databases, the timing (alternating blocks, interleaved calls,
pinning to one CPU), the libpq trace that counts round trips, the
bare-psycopg floor of a statement from ``sql/``, pgbench, and the report:
one row per measure, printed as one table with the machine it ran on.
"""

from __future__ import annotations

import contextlib
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
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.pq import Trace
from rich.console import Console
from rich.table import Table

from importjob import apply_migrations
from importjob._queries import query

BENCH_DB = "importjob_bench"
# advance.sql's parameters for one imported row, as the repository sends them.
ADVANCE_ONE_ROW: dict[str, Any] = {
    "processed": 1,
    "success": 1,
    "errors": 0,
    "skipped": 0,
    "outcomes": "{}",
    "max_labels": 32,
    "entries": "[]",
    "entries_dropped": 0,
    "max_errors": 1000,
    "error_log_limit": 1_000_000,
    "max_groups": 1000,
    "worker_id": None,
    "batch_key": None,
    "batch_number": None,
    "set_checkpoint": False,
    "checkpoint": None,
}

Call = Callable[[int], object]


# The report.


class Run(Protocol):
    """How a section runs: against the bench database at ``url``, adding rows to ``report``."""

    def __call__(self, url: str, report: Report, *, quick: bool) -> None: ...


@dataclass(frozen=True)
class Section:
    """One section of the suite: its name in the table, its title, and how to run it.

    ``quick`` asks ``run`` for a smoke run: smaller sizes, shorter rounds.
    """

    name: str
    title: str
    run: Run


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
    section: str = ""

    def add(
        self, measure: str, ours: str, baseline: str, *, ratio: float | None, target: str, ok: bool
    ) -> None:
        """Add a row to the current section and say it at once, so a long run shows where it is."""
        row = Row(self.section, measure, ours, baseline, ratio, target, ok)
        self.rows.append(row)
        mark = "ok" if row.ok else "MISSED"
        print(f"  {row.section}: {row.measure}: {row.ours} vs {row.baseline} -> {mark}", flush=True)


def machine() -> str:
    """Return one line naming the machine, the interpreter, the driver and the server."""
    with connect(url("postgres")) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, psycopg {psycopg.__version__}, "
        f"PostgreSQL {version} at {server_params()['host']}"
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


# The database.


def server_params() -> dict[str, Any]:
    """Return the server the PG* variables name (default 127.0.0.1:5432, user postgres)."""
    return {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "password": os.environ.get("PGPASSWORD") or None,
    }


def url(dbname: str) -> str:
    """Return the URL of database ``dbname`` on that server."""
    p = server_params()
    auth = p["user"] + (f":{p['password']}" if p["password"] else "")
    return f"postgresql://{auth}@/{dbname}?host={p['host']}&port={p['port']}"


@contextmanager
def exclusive_run() -> Iterator[None]:
    """Hold the server's bench lock for the run: a second run waits for this one.

    Both use the same databases, which each drops at its start and end, and
    two at once would also measure each other.
    """
    with psycopg.connect(url("postgres"), autocommit=True) as lock:
        [(free,)] = lock.execute("SELECT pg_try_advisory_lock(59, 0)").fetchall()
        if not free:
            print("another benchmark run holds the server: waiting for it", flush=True)
            lock.execute("SELECT pg_advisory_lock(59, 0)")
        yield


def fresh_database(name: str = BENCH_DB) -> str:
    """Create database ``name`` anew, apply the migrations, and return its URL."""
    drop_database(name)
    with psycopg.connect(url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = url(name)
    apply_migrations(database_url)
    return database_url


def drop_database(name: str = BENCH_DB) -> None:
    """Drop database ``name`` if it exists, whoever is connected to it."""
    with psycopg.connect(url("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def connect(database_url: str) -> psycopg.Connection[Any]:
    """Open an autocommit connection: every call is durable when it returns, as in production."""
    return psycopg.connect(database_url, autocommit=True)


def new_jobs(
    conn: psycopg.Connection[Any], count: int, status: str = "pending", *, owners: int = 0
) -> list[uuid.UUID]:
    """Insert ``count`` jobs in one statement; return their ids, oldest first.

    With ``owners``, the jobs go round that many owners; without, they have none.
    """
    rows = conn.execute(
        "INSERT INTO import_job"
        " (status, source_type, filename, started_at, completed_at, created_at, owner)"
        " SELECT %(status)s, 'csv', 'bench.csv',"
        "   CASE WHEN %(status)s <> 'pending' THEN now() END,"
        "   CASE WHEN %(status)s IN ('completed', 'failed', 'cancelled') THEN now() END,"
        "   clock_timestamp(),"
        "   CASE WHEN %(owners)s > 0 THEN 'owner-' || (g %% %(owners)s) END"
        " FROM generate_series(1, %(count)s) AS g RETURNING id",
        {"status": status, "count": count, "owners": owners},
    ).fetchall()
    return [row[0] for row in rows]


def same_statement(
    conn: psycopg.Connection[Any], name: str, fetch: str
) -> Callable[[dict[str, Any]], Any]:
    """Return the bare-psycopg floor: the same statement from sql/, prepared, one round trip.

    Rows in binary, as the repository reads them: the driver doing the same work.
    """
    text = query(name)
    cursor = conn.cursor(binary=True)

    def run(params: dict[str, Any]) -> Any:
        cursor.execute(text, params, prepare=True)
        if fetch == "one":
            return cursor.fetchone()
        if fetch == "all":
            return cursor.fetchall()
        return cursor.rowcount

    return run


# Timing.

_ALL_CPUS = os.sched_getaffinity(0)


def pin(*conns: Any) -> None:
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


def unpin() -> None:
    """Let this process run on every CPU again."""
    os.sched_setaffinity(0, _ALL_CPUS)


def median_us(samples: list[int]) -> float:
    """Return the median of nanosecond samples, in µs."""
    return statistics.median(samples) / 1000


def interleaved(ours: Call, floor: Call, rounds: int, per_round: int) -> tuple[float, float]:
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
    return median_us(ours_ns), median_us(floor_ns)


def call_by_call(
    ours: Call, floor: Call, calls: int, clock: Callable[[], int] = time.perf_counter_ns
) -> tuple[list[int], list[int]]:
    """Return the ns each call of ``ours`` and ``floor`` took, interleaved call by call.

    Call ``i`` of one side runs next to call ``i`` of the other, and which
    goes first alternates, so a drift, a stall or a change of CPU falls on
    both sides alike: ``ours[i] - floor[i]`` is a fair pair. ``clock`` is
    wall time by default; `time.thread_time_ns` counts only this thread's
    CPU, leaving out the round trip and its jitter.
    """
    ours_ns: list[int] = []
    floor_ns: list[int] = []
    for index in range(calls):
        pair = ((ours, ours_ns), (floor, floor_ns))
        for target, samples in pair if index % 2 == 0 else pair[::-1]:
            started = clock()
            target(index)
            samples.append(clock() - started)
    return ours_ns, floor_ns


def alternating(conditions: tuple[str, ...], rounds: int) -> list[str]:
    """Return the order in which to measure ``conditions``, ``rounds`` times each.

    Each round rotates the order by one (AB BA AB ..., ABC BCA CAB ...), so
    that a drift of the machine falls on every condition alike and none is
    always the first after a pause.
    """
    order: list[str] = []
    for round_ in range(rounds):
        shift = round_ % len(conditions)
        order += conditions[shift:] + conditions[:shift]
    return order


# Round trips, from a libpq trace.


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


def round_trips(conn: psycopg.Connection[Any], call: Call, start: int) -> int:
    """Return the most round trips one of ten calls took (after the prepare)."""
    most = 0
    for i in range(10):
        with _traced(conn) as messages:
            call(start + i)
        most = max(most, messages.count("Sync"))
    return most


# pgbench.


def pgbench_script(
    conn: psycopg.Connection[Any], name: str, params: dict[str, Any], id_expression: str
) -> str:
    """Return the statement ``sql/<name>.sql`` as a pgbench script line.

    pgbench takes no bound parameters: the values are rendered as literals,
    and the job id as ``id_expression`` (SQL that picks a job per client or
    per transaction).
    """
    text = query(name)
    for key, value in params.items():
        text = text.replace(f"%({key})s", sql.Literal(value).as_string(conn))
    text = text.replace("%(id)s", id_expression)
    return " ".join(line.split("--")[0] for line in text.splitlines()).strip() + "\n"


def pgbench(dbname: str, script: str, clients: int, seconds: float) -> float | None:
    """Run ``script`` with ``clients`` prepared-mode clients; return transactions per second.

    Returns None when pgbench is missing or fails (its output goes to stderr).
    """
    program = shutil.which("pgbench")
    if program is None:
        return None
    params = server_params()
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "script.sql")
        with open(path, "w") as f:
            f.write(script)
        env = {**os.environ, "PGPASSWORD": params["password"] or ""}
        done = subprocess.run(  # noqa: S603 - pgbench, with arguments built here
            [
                program,
                "-n",
                "-M",
                "prepared",
                "-c",
                str(clients),
                "-j",
                str(os.cpu_count() or 2),
                "-T",
                str(max(1, round(seconds))),
                "-f",
                path,
                "-h",
                params["host"],
                "-p",
                str(params["port"]),
                "-U",
                params["user"],
                dbname,
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
