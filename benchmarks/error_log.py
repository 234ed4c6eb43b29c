r"""error-log: flushes that do not grow with the log, exports at COPY's rate, lists.

Five measures, each against its baseline in the same run:

- a flush of 10 entries into a job whose log holds 100,000 entries against
  the same flush into a job whose log is empty (both with a full ``errors``
  column, so only the log differs), call by call;
- a tracker's flush of 10 entries against its flush of none, call by call;
- the CSV export of a job's 1,000,000 logged entries through
  `ImportJobRepository.export_errors`, against ``psql -c "\\copy (SELECT the
  same columns) TO STDOUT WITH CSV HEADER"`` on the same data, alternately,
  and the exporting process's peak RSS growth (a fresh process, so the
  high-water mark is its own);
- `error_summary` on that job (1,000 groups), its median;
- `list_recent` of 50 jobs holding 1,000 entries each against 50 jobs
  holding none.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql

from benchmarks._harness import (
    Report,
    Section,
    call_by_call,
    connect,
    median_us,
    server_params,
)
from importjob import ImportJobRepository, ImportJobStatus

# One failed row's entry, as a tracker records it: a thousand reasons in all.
_ENTRY = sql.SQL(
    "jsonb_build_object('type', 'ImportValidationError', 'row', i, 'field', 'answer',"
    " 'message', 'must not be empty (rule ' || (i %% 1000) || ')', 'value', '')"
)
_EXPORT_COLUMNS = (
    "n, entry ->> 'type' AS type, entry ->> 'row' AS \"row\","
    " entry ->> 'line_number' AS line_number, entry ->> 'field' AS field,"
    " entry ->> 'message' AS message, entry ->> 'value' AS value, entry"
)


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section."""
    flush_lines(url, report, logged=10_000 if quick else 100_000, calls=100 if quick else 400)
    export_lines(url, report, entries=100_000 if quick else 1_000_000)
    list_lines(url, report, calls=100 if quick else 400)


def _job_with_log(
    conn: psycopg.Connection[Any], entries: int, status: str = "processing"
) -> uuid.UUID:
    """Insert a job whose errors column is full (1,000 entries) and that holds ``entries``.

    Written in SQL, as the repository would have written it: every entry in
    the log, the first 1,000 repeated in the column, the groups counted from
    the log, the job's counters.
    """
    [(job_id,)] = conn.execute(
        sql.SQL(
            "INSERT INTO import_job (status, source_type, filename, started_at, completed_at,"
            "                        heartbeat_at, errors, errors_dropped, errors_logged,"
            "                        errors_recorded)"
            " SELECT %(status)s, 'csv', 'bench.csv', now(),"
            "        CASE WHEN %(status)s = 'failed' THEN now() END, now(),"
            "        (SELECT jsonb_agg({entry}) FROM generate_series(1, 1000) AS i),"
            "        greatest(0, %(entries)s - 1000), %(entries)s, %(entries)s"
            " RETURNING id"
        ).format(entry=_ENTRY),
        {"status": status, "entries": entries},
    ).fetchall()
    conn.execute(
        sql.SQL(
            "INSERT INTO import_job_error (job_id, n, entry) SELECT %(id)s, i, {entry}"
            " FROM generate_series(1, %(entries)s) AS i"
        ).format(entry=_ENTRY),
        {"id": job_id, "entries": entries},
    )
    conn.execute(
        "INSERT INTO import_job_error_group (job_id, key, type, field, message, count)"
        " SELECT job_id, import_job_error_key(entry ->> 'type', entry ->> 'field',"
        "                                     entry ->> 'message'),"
        "        entry ->> 'type', entry ->> 'field', entry ->> 'message', count(*)"
        "   FROM import_job_error WHERE job_id = %(id)s GROUP BY 1, 2, 3, 4, 5",
        {"id": job_id},
    )
    conn.execute(
        "UPDATE import_job SET error_groups ="
        " (SELECT count(*) FROM import_job_error_group WHERE job_id = %(id)s) WHERE id = %(id)s",
        {"id": job_id},
    )
    conn.execute("VACUUM ANALYZE import_job_error")
    return job_id  # type: ignore[no-any-return]


def flush_lines(url: str, report: Report, *, logged: int, calls: int) -> None:
    """Time a flush of 10 entries into a job logging ``logged`` entries and into an empty one.

    Then a tracker's flush (a batch id, a worker) of 10 entries against the
    same flush of none, into jobs alike (a full ``errors`` column, an empty
    log): what logging adds to a flush of a failing import.
    """
    conn = connect(url)
    full = _job_with_log(conn, logged)
    empty = _job_with_log(conn, 0)
    failing, clean = _job_with_log(conn, 0), _job_with_log(conn, 0)
    repo = ImportJobRepository(conn)
    rows = iter(range(10**9))
    batches = iter(range(1, 10**9))

    def entries() -> list[dict[str, Any]]:
        return [
            {
                "type": "ImportValidationError",
                "row": row,
                "field": "answer",
                "message": f"must not be empty (rule {row % 7})",
                "value": "",
            }
            for row in (next(rows) for _ in range(10))
        ]

    def flush(job_id: uuid.UUID) -> None:
        repo.advance(job_id, 10, 0, 10, entries=entries(), worker_id="bench")

    def tracker_flush(job_id: uuid.UUID, with_entries: bool) -> None:
        batch = ("bench", next(batches))
        if with_entries:
            repo.advance(job_id, 10, 0, 10, entries=entries(), worker_id="bench", batch_id=batch)
        else:
            repo.advance(job_id, 10, 10, 0, worker_id="bench", batch_id=batch)

    for _ in range(20):  # warm up: prepared statements, the groups made
        flush(full)
        flush(empty)
        tracker_flush(failing, True)
        tracker_flush(clean, False)
    _paired_line(
        report,
        f"flush of 10 entries, job logging {logged:,} vs none: median",
        call_by_call(lambda i: flush(full), lambda i: flush(empty), calls),
        bound=1.2,
    )
    # For reference, not held to a bound: a flush of none runs advance.sql,
    # a statement without the log's CTEs, so the ratio is what recording 10
    # entries costs against the cheapest flush, not a regression check.
    _paired_line(
        report,
        "tracker flush of 10 entries vs of none: median",
        call_by_call(
            lambda i: tracker_flush(failing, True), lambda i: tracker_flush(clean, False), calls
        ),
        bound=None,
    )
    conn.close()


def _paired_line(
    report: Report, measure: str, samples: tuple[list[int], list[int]], *, bound: float | None
) -> None:
    """Add the line of two sides' medians, held to ``ours / floor <= bound`` unless None."""
    ours, floor = median_us(samples[0]), median_us(samples[1])
    report.add(
        measure,
        f"{ours:.0f} µs",
        f"{floor:.0f} µs",
        ratio=ours / floor,
        target="for reference" if bound is None else f"≤ {bound:g}x",
        ok=bound is None or ours / floor <= bound,
    )


def _export_in_fresh_process(url: str, job_id: str, out: Any) -> None:
    """Export the job's log to /dev/null; put (seconds, entries, RSS growth in bytes) on ``out``."""
    conn = psycopg.connect(url, autocommit=True)
    repo = ImportJobRepository(conn)
    repo.error_summary(job_id)  # connected and imported: the baseline is the process at rest
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        written = repo.export_errors(job_id, sink)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    conn.close()
    out.put((took, written, (after - before) * 1024))  # ru_maxrss is in KiB on Linux


def _ours(url: str, job_id: uuid.UUID) -> tuple[float, int, int]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_export_in_fresh_process, args=(url, str(job_id), out))
    process.start()
    result = out.get(timeout=600)
    process.join()
    return result  # type: ignore[no-any-return]


def _psql(dbname: str, job_id: uuid.UUID) -> float:
    params = server_params()
    # The id is a UUID this run made: nothing to quote.
    command = (
        f"\\copy (SELECT {_EXPORT_COLUMNS} FROM import_job_error"  # noqa: S608
        f" WHERE job_id = '{job_id}' ORDER BY n) TO STDOUT WITH CSV HEADER"
    )
    program = shutil.which("psql")
    if program is None:
        raise RuntimeError("psql is not installed: the export's floor needs it")
    env = {**os.environ, "PGPASSWORD": params["password"] or ""}
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - psql, with arguments built here
        [
            program,
            "-h",
            params["host"],
            "-p",
            str(params["port"]),
            "-U",
            params["user"],
            "-d",
            dbname,
            "-X",
            "-q",
            "-c",
            command,
        ],
        stdout=subprocess.DEVNULL,
        check=True,
        env=env,
    )
    return time.perf_counter() - started


def export_lines(url: str, report: Report, *, entries: int) -> None:
    r"""Export ``entries`` logged entries of one job, against psql's \copy; then its summary."""
    conn = connect(url)
    job_id = _job_with_log(conn, entries, status="failed")
    dbname = conn.info.dbname
    ours: list[tuple[float, int, int]] = []
    theirs: list[float] = []
    for _ in range(3):  # alternately, so a drift of the machine falls on both
        ours.append(_ours(url, job_id))
        theirs.append(_psql(dbname, job_id))
    took, written, _ = min(ours)
    floor = min(theirs)
    rate, floor_rate = written / took, entries / floor
    report.add(
        f"export_errors CSV of {entries:,} entries (best of 3): rate vs psql \\copy",
        f"{rate:,.0f}/s ({took:.2f} s)",
        f"{floor_rate:,.0f}/s ({floor:.2f} s)",
        ratio=rate / floor_rate,
        target="≥ 0.8x",
        ok=written == entries and rate / floor_rate >= 0.8,
    )
    peak = max(result[2] for result in ours)
    report.add(
        "export_errors: peak RSS growth of the exporting process",
        f"{peak / 2**20:.1f} MB",
        f"{entries:,} entries",
        ratio=None,
        target="≤ 50 MB",
        ok=peak <= 50 * 2**20,
    )
    repo = ImportJobRepository(conn)
    clock = time.perf_counter_ns
    samples = []
    for _ in range(200):
        started = clock()
        groups = repo.error_summary(job_id)
        samples.append(clock() - started)
    median = median_us(samples)
    report.add(
        f"error_summary of that job ({len(groups)} of 1,000 groups shown): median",
        f"{median / 1000:.2f} ms",
        f"p90 {statistics.quantiles(samples, n=10)[-1] / 1e6:.2f} ms",
        ratio=None,
        target="≤ 5 ms",
        ok=median <= 5000,
    )
    conn.close()


def list_lines(url: str, report: Report, *, calls: int) -> None:
    """list_recent of 50 jobs holding 1,000 entries each against 50 holding none."""
    conn = connect(url)
    for _ in range(50):
        _job_with_log(conn, 1000, status="failed")
        conn.execute(
            "INSERT INTO import_job (status, source_type, filename, completed_at)"
            " VALUES ('cancelled', 'csv', 'clean.csv', now())"
        )
    repo = ImportJobRepository(conn)
    if len(repo.list_recent(ImportJobStatus.FAILED, 50)) != 50:
        raise RuntimeError("the failed jobs were not all made")
    samples = call_by_call(
        lambda i: repo.list_recent(ImportJobStatus.FAILED, 50),
        lambda i: repo.list_recent(ImportJobStatus.CANCELLED, 50),
        calls,
    )
    _paired_line(
        report, "list_recent(50): jobs of 1,000 entries each vs of none: median", samples, bound=1.5
    )
    light = median_us(samples[1])
    whole, _ = call_by_call(
        lambda i: repo.list_recent(ImportJobStatus.FAILED, 50, with_errors=True),
        lambda i: None,
        max(calls // 4, 20),
    )
    report.add(
        "the same with_errors=True (each job with its entries): median",
        f"{median_us(whole):.0f} µs",
        f"{light:.0f} µs",
        ratio=median_us(whole) / light,
        target="for reference",
        ok=True,
    )
    conn.close()


SECTION = Section(name="error-log", title="the error log", run=run)
