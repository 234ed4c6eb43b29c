"""chunks: flushes into one parent's chunks, and reading a parent as the sum of its chunks."""

from __future__ import annotations

import multiprocessing
import statistics
import time
import uuid
from typing import Any

from benchmarks._harness import Report, Section, alternating, connect
from importjob import Chunk, ImportJob, ImportJobRepository

WORKERS = 8
CHUNKS = 64


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: 8 processes on 64 chunks against 64 jobs, then a parent's read."""
    flush_line(url, report, seconds=1.5 if quick else 4.0, rounds=2 if quick else 3)
    read_line(url, report, chunks=1000, calls=100 if quick else 400, rounds=3 if quick else 5)


def _flusher(url: str, job_ids: list[uuid.UUID], start_at: float, end_at: float, out: Any) -> None:
    """Flush as a tracker does (counts, worker, batch id) into ``job_ids`` in turn; put calls."""
    conn = connect(url)
    repo = ImportJobRepository(conn)
    key = uuid.uuid4().hex
    for job_id in job_ids:
        repo.start(job_id, "bench")
    while time.monotonic() < start_at:
        time.sleep(0.001)
    calls = 0
    while time.monotonic() < end_at:
        job_id = job_ids[calls % len(job_ids)]
        repo.advance(job_id, 10, 9, 1, worker_id="bench", batch_id=(key, calls + 1))
        calls += 1
    out.put(calls)
    conn.close()


def _round(url: str, job_ids: list[uuid.UUID], seconds: float) -> float:
    """Return the calls/s of WORKERS processes flushing into ``job_ids``, each its share."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.monotonic() + 3.0  # spawning and starting every process first
    share = len(job_ids) // WORKERS
    processes = [
        context.Process(
            target=_flusher,
            args=(url, job_ids[i * share : (i + 1) * share], start_at, start_at + seconds, out),
        )
        for i in range(WORKERS)
    ]
    for process in processes:
        process.start()
    calls: int = sum(out.get() for _ in processes)
    for process in processes:
        process.join()
    return calls / seconds


def _hot(conn: Any) -> tuple[int, int]:
    conn.execute("SELECT pg_stat_force_next_flush()")
    row = conn.execute(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'import_job'"
    ).fetchone()
    return int(row[0]), int(row[1])


def flush_line(url: str, report: Report, seconds: float, rounds: int) -> None:
    """Flushes by 8 processes into one parent's 64 chunks against 64 independent jobs."""
    conn = connect(url)
    repo = ImportJobRepository(conn)
    rates: dict[str, list[float]] = {"chunks": [], "jobs": []}
    updates = {"chunks": 0, "jobs": 0}
    hot = {"chunks": 0, "jobs": 0}
    for side in alternating(("chunks", "jobs"), rounds):
        if side == "chunks":
            _, children = repo.create_chunked(
                ImportJob(source_type="csv", filename="bench.csv"),
                [Chunk(1_000_000) for _ in range(CHUNKS)],
            )
            ids = [child.id for child in children]
        else:
            ids = [
                repo.create(ImportJob(source_type="csv", filename="bench.csv")).id
                for _ in range(CHUNKS)
            ]
        before = _hot(conn)
        rates[side].append(_round(url, ids, seconds))
        after = _hot(conn)
        # Every flush HOT: the updates past the starts (one per job, which
        # moves the indexed status) are all heap-only.
        updates[side] += after[0] - before[0] - CHUNKS
        hot[side] += after[1] - before[1]
    chunked, independent = statistics.median(rates["chunks"]), statistics.median(rates["jobs"])
    report.add(
        f"{WORKERS} processes flushing into one parent's {CHUNKS} chunks vs {CHUNKS} jobs",
        f"{chunked:.0f} calls/s",
        f"{independent:.0f} calls/s",
        ratio=chunked / independent,
        target="≥ 0.9x",
        ok=chunked / independent >= 0.9,
    )
    # Against the same flushes into independent jobs: an update finding its
    # page full, its dead versions not yet pruned, goes to another page.
    report.add(
        "flushes that were HOT updates, chunks vs independent jobs",
        f"{hot['chunks']} of ≥ {updates['chunks']}",
        f"{hot['jobs']} of ≥ {updates['jobs']}",
        ratio=None,
        target="all",
        ok=hot["chunks"] >= updates["chunks"],
    )
    conn.close()


def read_line(url: str, report: Report, chunks: int, calls: int, rounds: int) -> None:
    """Read a parent of ``chunks`` chunks in the middle of its import against one job.

    Half its chunks ended, one per worker processing, the rest pending, all
    that started with progress and outcomes.
    """
    conn = connect(url)
    repo = ImportJobRepository(conn)
    parent, children = repo.create_chunked(
        ImportJob(source_type="csv", filename="bench.csv"), [Chunk(100) for _ in range(chunks)]
    )
    for number, child in enumerate(children[: chunks // 2 + WORKERS]):
        repo.start(child.id, "bench")
        repo.advance(child.id, 10, 9, 1, outcomes={"created": 5, "updated": 4})
        if number < chunks // 2:
            repo.update_status(child.id, "completed")
    one = repo.create(ImportJob(source_type="csv", filename="one.csv"))
    samples: dict[str, list[int]] = {"parent": [], "one": []}
    clock = time.perf_counter_ns
    for side in alternating(("parent", "one"), rounds):
        job_id = parent.id if side == "parent" else one.id
        for _ in range(calls):
            started = clock()
            repo.get_by_id(job_id)
            samples[side].append(clock() - started)
    parent_us = statistics.median(samples["parent"]) / 1000
    one_us = statistics.median(samples["one"]) / 1000
    report.add(
        f"get_by_id of a parent of {chunks} chunks vs one job: median",
        f"{parent_us:.0f} µs",
        f"{one_us:.0f} µs",
        ratio=parent_us / one_us,
        target="≤ 2 ms and ≤ 3x",
        ok=parent_us <= 2000 and parent_us / one_us <= 3,
    )
    plan = conn.execute(
        "EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM import_job_summed WHERE id = %s", (parent.id,)
    ).fetchall()
    report.plans[f"get_by_id of a parent of {chunks} chunks"] = "\n".join(r[0] for r in plan)
    conn.close()


SECTION = Section(name="chunks", title="chunked imports", run=run)
