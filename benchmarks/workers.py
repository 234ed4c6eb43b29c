"""workers: many worker processes advancing their jobs at once."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from typing import Any

from benchmarks._harness import (
    ADVANCE_ONE_ROW,
    BENCH_DB,
    Report,
    Section,
    connect,
    new_jobs,
    pgbench,
    pgbench_script,
)
from importjob import ImportJobRepository
from importjob._queries import query


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: 16 processes, each on its own job."""
    workers_lines(url, report, workers=16, seconds=3.0 if quick else 15.0)


def _advance_worker(url: str, job_id: uuid.UUID, ready: Any, window: Any, out: Any) -> None:
    """Call advance on one job during ``window``, through importjob and bare psycopg in turn.

    Puts (calls, seconds) for each side on ``out``.
    """
    conn = connect(url)
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
    # Every process started and warmed up, then the parent sets the window:
    # on a loaded machine, starting 16 processes can take longer than any lead.
    ready.wait()
    ready.wait()
    start_at, end_at = window[0], window[1]
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
    out, ready, window = spawn.Queue(), spawn.Barrier(len(jobs) + 1), spawn.Array("d", 2)
    workers = [
        spawn.Process(target=_advance_worker, args=(url, job, ready, window, out)) for job in jobs
    ]
    for worker in workers:
        worker.start()
    ready.wait(timeout=300)
    window[0] = time.monotonic() + 0.2
    window[1] = window[0] + seconds
    ready.wait(timeout=60)
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join()
    # Each process's rate on each side, summed: what all of them reach together.
    ours = sum(calls / took for calls, took in (r["ours"] for r in results))
    floor = sum(calls / took for calls, took in (r["floor"] for r in results))
    return ours, floor


def _ceiling(url: str, jobs: list[uuid.UUID], seconds: float) -> float | None:
    with connect(url) as conn:
        # Each client on its own job, through :client_id.
        conn.execute("CREATE TABLE IF NOT EXISTS bench_client (n int PRIMARY KEY, id uuid)")
        conn.execute("TRUNCATE bench_client")
        for n, job in enumerate(jobs):
            conn.execute("INSERT INTO bench_client VALUES (%s, %s)", [n, job])
        script = pgbench_script(
            conn, "advance", ADVANCE_ONE_ROW, "(SELECT id FROM bench_client WHERE n = :client_id)"
        )
    return pgbench(BENCH_DB, script, len(jobs), seconds)


def workers_lines(url: str, report: Report, workers: int, seconds: float) -> None:
    """Aggregate advance calls per second from ``workers`` processes, each on its own job."""
    conn = connect(url)
    jobs = new_jobs(conn, workers)
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
        f"{workers} processes, advance on {workers} jobs: calls/s (paired blocks)",
        f"{ours:,.0f}/s",
        f"{floor:,.0f}/s",
        ratio=ratio,
        target="≥ 0.9x",
        ok=ratio >= 0.9,
    )
    ceiling = _ceiling(url, jobs, seconds)
    report.add(
        f"pgbench, {workers} clients, the same UPDATE (server ceiling)",
        "-" if ceiling is None else f"{ceiling:,.0f}/s",
        f"{floor:,.0f}/s",
        ratio=None if ceiling is None else floor / ceiling,
        target="for reference",
        ok=True,
    )


SECTION = Section(name="workers", title="many workers", run=run)
