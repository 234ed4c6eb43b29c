"""worker: `importjob worker` picking jobs up, and what idle workers cost."""

from __future__ import annotations

import multiprocessing
import statistics
import time
from typing import Any

from benchmarks._harness import Report, Section, alternating, connect
from importjob import ImportJob, ImportJobRepository, Tracker

WORKERS = 4
# Between two creates: every worker is idle again (a job takes a few ms).
GAP = 0.05


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: pickup by 4 idle workers, then their statements while idle."""
    pickup_line(url, report, jobs=40 if quick else 150, rounds=2 if quick else 4)
    idle_line(url, report, seconds=3.0 if quick else 10.0)


def first_line(job: ImportJob, t: Tracker) -> None:
    """Store the time of the handler's first line with the job."""
    t.checkpoint({"at": time.time()})
    t.ok()


def serve(url: str) -> None:
    """Run one worker whose handler notes its first line; SIGTERM stops it gracefully."""
    from importjob import run_worker  # noqa: PLC0415 - in the child

    run_worker(first_line, url)


def _listen(url: str, ready: Any, heard: Any) -> None:
    """Put the time each notification arrives at a bare LISTEN: the floor."""
    conn = connect(url)
    conn.execute("LISTEN bench_floor")
    ready.set()
    for _ in conn.notifies():
        heard.put(time.time())


def spawn(target: Any, *args: Any) -> Any:
    """Start ``target(*args)`` in a new process (spawned: nothing inherited but the arguments)."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


def pickups(repo: ImportJobRepository, jobs: int) -> list[float]:
    """Create jobs one at a time; return each one's ms from create to its handler's first line."""
    latencies = []
    for _ in range(jobs):
        created = time.time()
        job = repo.create(ImportJob(source_type="csv", filename="pickup.csv"))
        while (read := repo.get_by_id(job.id)) is not None and not read.status.is_terminal:
            time.sleep(0.002)
        if read is None or read.checkpoint is None:
            raise RuntimeError(f"job {job.id} was not picked up")
        latencies.append((read.checkpoint["at"] - created) * 1000)
        time.sleep(GAP)
    return latencies


def _notified(conn: Any, heard: Any, jobs: int) -> list[float]:
    latencies = []
    for _ in range(jobs):
        sent = time.time()
        conn.execute("SELECT pg_notify('bench_floor', '')")
        latencies.append((heard.get(timeout=30) - sent) * 1000)
        time.sleep(GAP)
    return latencies


def pickup_line(url: str, report: Report, jobs: int, rounds: int) -> None:
    """From create to the handler's first line, 4 idle workers, against a bare LISTEN's wake-up."""
    conn = connect(url)
    repo = ImportJobRepository(conn)
    context = multiprocessing.get_context("spawn")
    ready, heard = context.Event(), context.Queue()
    listener = spawn(_listen, url, ready, heard)
    workers = [spawn(serve, url) for _ in range(WORKERS)]
    ready.wait(60)
    time.sleep(3.0)  # the workers started and listening
    samples: dict[str, list[float]] = {"worker": [], "listen": []}
    try:
        for side in alternating(("worker", "listen"), rounds):
            if side == "worker":
                samples[side] += pickups(repo, jobs)
            else:
                samples[side] += _notified(conn, heard, jobs)
    finally:
        for process in [*workers, listener]:
            process.terminate()
            process.join(30)
    ours, floor = samples["worker"], samples["listen"]
    median, p99 = statistics.median(ours), statistics.quantiles(ours, n=100)[98]
    report.add(
        f"pickup by {WORKERS} idle workers, create to the handler's first line: median",
        f"{median:.1f} ms",
        f"{statistics.median(floor):.1f} ms",
        ratio=median / statistics.median(floor),
        target="≤ 20 ms",
        ok=median <= 20,
    )
    report.add(
        f"pickup by {WORKERS} idle workers: p99",
        f"{p99:.1f} ms",
        f"{statistics.quantiles(floor, n=100)[98]:.1f} ms",
        ratio=None,
        target="≤ 100 ms",
        ok=p99 <= 100,
    )
    conn.close()


def _commits(conn: Any) -> int:
    row = conn.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    return int(row[0])


def _polling_loop(url: str) -> None:
    """Poll claim_next every 10 ms, as the README's loop before `importjob worker` did."""
    repo = ImportJobRepository(connect(url))
    while True:
        if repo.claim_next() is None:
            time.sleep(0.01)


# An idle session reports its counts to pg_stat_database up to 10 s late
# (PostgreSQL's idle stats interval): each end of the window waits it out.
_STATS_LAG = 11.0


def _idle_rate(conn: Any, seconds: float) -> float:
    time.sleep(_STATS_LAG)
    before = _commits(conn)
    time.sleep(seconds)
    time.sleep(_STATS_LAG)
    after = _commits(conn)
    # Each read counts every commit up to _STATS_LAG before it: the two
    # count the commits of as long as the time between them.
    return (after - before) / (seconds + _STATS_LAG)


def idle_line(url: str, report: Report, seconds: float) -> None:
    """Statements per second from 4 idle workers, against 4 loops polling every 10 ms."""
    conn = connect(url)
    rates: dict[str, float] = {}
    for side, target in (("worker", serve), ("polling", _polling_loop)):
        processes = [spawn(target, url) for _ in range(WORKERS)]
        time.sleep(3.0)  # started, past their first claims
        try:
            rates[side] = _idle_rate(conn, seconds)
        finally:
            for process in processes:
                process.terminate()
                process.join(30)
    report.add(
        f"statements/s from {WORKERS} idle workers vs {WORKERS} loops polling every 10 ms",
        f"{rates['worker']:.1f}/s",
        f"{rates['polling']:.0f}/s",
        ratio=rates["worker"] / rates["polling"] if rates["polling"] else None,
        target="next to none",
        ok=rates["worker"] <= WORKERS,  # the fallback claim: one per worker every 5 s
    )
    conn.close()


SECTION = Section(name="worker", title="importjob worker", run=run)
