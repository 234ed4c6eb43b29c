"""peer: `importjob worker` against procrastinate's worker, on the same server.

procrastinate (a PostgreSQL task queue on psycopg 3) is the closest peer;
it is a dependency of the benchmark environment only. Both sides run 4
worker processes, one job at a time each, started and idle before the jobs
come, and their handlers do nothing: importjob's runs inside its tracker
(heartbeats, the end) and its workers rescue.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import procrastinate

from benchmarks import _harness
from benchmarks._harness import Report, Section, alternating, connect, drop_database
from benchmarks.worker import GAP, WORKERS, pickups, serve, spawn
from importjob import ImportJob, ImportJobRepository, Tracker

PEER_DB = "importjob_bench_peer"

# procrastinate finds its tasks through a module-level app; its connection
# comes from the environment each worker process inherits.
app = procrastinate.App(connector=procrastinate.PsycopgConnector())


@app.task(name="noop")
def noop(at: float = 0.0) -> None:
    """Do nothing; when asked, note how long after ``at`` this first line ran."""
    if at:
        with Path(os.environ["BENCH_PICKUP_DIR"], str(os.getpid())).open("a") as out:
            out.write(f"{(time.time() - at) * 1000}\n")


def _nothing(job: ImportJob, t: Tracker) -> None:
    """Do nothing, in a tracker, as importjob's handler."""


def _importjob_worker(database_url: str) -> None:
    from importjob import run_worker  # noqa: PLC0415 - in the child

    run_worker(_nothing, database_url)


def _procrastinate_worker(conninfo: str) -> None:
    worker_app = app.with_connector(procrastinate.PsycopgConnector(conninfo=conninfo))

    async def work() -> None:
        async with worker_app.open_async():
            await worker_app.run_worker_async(concurrency=1)

    asyncio.run(work())


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: throughput of 2,000 no-op jobs, then pickup one job at a time."""
    peer_url = _peer_database()
    try:
        throughput_line(url, peer_url, report, jobs=500 if quick else 2000, rounds=2)
        pickup_line(url, peer_url, report, jobs=30 if quick else 100, rounds=2)
    finally:
        drop_database(PEER_DB)


def _peer_database() -> str:
    drop_database(PEER_DB)
    with connect(_harness.url("postgres")) as admin:
        admin.execute(f"CREATE DATABASE {PEER_DB}")
    peer_url = _harness.url(PEER_DB)
    with procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(conninfo=peer_url)
    ).open() as schema_app:
        schema_app.schema_manager.apply_schema()
    return peer_url


def _stop(processes: list[Any]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(60)


def _until(conn: Any, query: str, params: tuple[Any, ...] = ()) -> None:
    while conn.execute(query, params).fetchone()[0]:
        time.sleep(0.01)


def _importjob_round(database_url: str, jobs: int) -> float:
    conn = connect(database_url)
    repo = ImportJobRepository(conn)
    workers = [spawn(_importjob_worker, database_url) for _ in range(WORKERS)]
    time.sleep(3.0)  # started and listening
    started = time.perf_counter()
    with conn.transaction():
        for _ in range(jobs):
            repo.create(ImportJob(source_type="csv", filename="noop.csv"))
    _until(conn, "SELECT count(*) FROM import_job WHERE status IN ('pending', 'processing')")
    took = time.perf_counter() - started
    _stop(workers)
    conn.execute("DELETE FROM import_job")
    conn.close()
    return jobs / took


def _procrastinate_round(peer_url: str, jobs: int) -> float:
    conn = connect(peer_url)
    workers = [spawn(_procrastinate_worker, peer_url) for _ in range(WORKERS)]
    time.sleep(3.0)
    deferrer = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=peer_url))
    with deferrer.open():
        task = deferrer.configure_task("noop")
        started = time.perf_counter()
        task.batch_defer(*({} for _ in range(jobs)))
        _until(conn, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")
        took = time.perf_counter() - started
    _stop(workers)
    conn.execute("DELETE FROM procrastinate_jobs")
    conn.close()
    return jobs / took


def throughput_line(bench_url: str, peer_url: str, report: Report, jobs: int, rounds: int) -> None:
    """Jobs per second of 4 worker processes each, alternating rounds."""
    rates: dict[str, list[float]] = {"importjob": [], "procrastinate": []}
    for side in alternating(("importjob", "procrastinate"), rounds):
        if side == "importjob":
            rates[side].append(_importjob_round(bench_url, jobs))
        else:
            rates[side].append(_procrastinate_round(peer_url, jobs))
    ours, peer = statistics.median(rates["importjob"]), statistics.median(rates["procrastinate"])
    report.add(
        f"{jobs} no-op jobs by {WORKERS} worker processes, importjob vs procrastinate",
        f"{ours:.0f} jobs/s",
        f"{peer:.0f} jobs/s",
        ratio=ours / peer,
        target="≥ 1.5x",
        ok=ours / peer >= 1.5,
    )


def _importjob_pickup(database_url: str, jobs: int) -> list[float]:
    conn = connect(database_url)
    repo = ImportJobRepository(conn)
    workers = [spawn(serve, database_url) for _ in range(WORKERS)]
    time.sleep(3.0)
    latencies = pickups(repo, jobs)
    _stop(workers)
    conn.close()
    return latencies


def _procrastinate_pickup(peer_url: str, jobs: int) -> list[float]:
    conn = connect(peer_url)
    with tempfile.TemporaryDirectory() as notes:
        os.environ["BENCH_PICKUP_DIR"] = notes
        workers = [spawn(_procrastinate_worker, peer_url) for _ in range(WORKERS)]
        time.sleep(3.0)
        deferrer = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=peer_url)
        )
        with deferrer.open():
            task = deferrer.configure_task("noop")
            for _ in range(jobs):
                job_id = task.defer(at=time.time())
                _until(
                    conn,
                    "SELECT count(*) FROM procrastinate_jobs"
                    " WHERE id = %s AND status IN ('todo', 'doing')",
                    (job_id,),
                )
                time.sleep(GAP)
        _stop(workers)
        latencies = [float(line) for note in Path(notes).iterdir() for line in note.open()]
    conn.close()
    return latencies


def pickup_line(bench_url: str, peer_url: str, report: Report, jobs: int, rounds: int) -> None:
    """From enqueueing one job to its handler's first line, 4 idle workers each."""
    samples: dict[str, list[float]] = {"importjob": [], "procrastinate": []}
    for side in alternating(("importjob", "procrastinate"), rounds):
        if side == "importjob":
            samples[side] += _importjob_pickup(bench_url, jobs)
        else:
            samples[side] += _procrastinate_pickup(peer_url, jobs)
    ours = statistics.median(samples["importjob"])
    peer = statistics.median(samples["procrastinate"])
    report.add(
        f"pickup by {WORKERS} idle workers, importjob vs procrastinate: median",
        f"{ours:.1f} ms",
        f"{peer:.1f} ms",
        ratio=ours / peer,
        target="≤ 1x",
        ok=ours <= peer,
    )


SECTION = Section(name="peer", title="importjob worker against procrastinate", run=run)
