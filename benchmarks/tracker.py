"""tracker: what the tracker adds per row, and how often it writes."""

from __future__ import annotations

import time
from typing import Any

from benchmarks._harness import Report, Section, connect
from importjob import ImportJob, ImportJobRepository, track
from importjob._repository_base import Advanced


class _CountingRepository(ImportJobRepository):
    writes = 0

    def _flush(self, *args: Any, **kwargs: Any) -> Advanced:  # a tracker's flush
        self.writes += 1
        return super()._flush(*args, **kwargs)


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: a tracked loop of ``ok()`` against an empty loop."""
    tracker_lines(url, report, rows=100_000 if quick else 1_000_000)


def tracker_lines(url: str, report: Report, rows: int) -> None:
    """Measure what the tracker adds per row over an empty loop, and how often it writes."""
    conn = connect(url)
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
        f"{rows:,} rows, nothing per row: added per row",
        f"{per_row_us:.3f} µs",
        f"{empty / rows * 1e6:.3f} µs empty loop",
        ratio=None,
        target="≤ 1 µs",
        ok=per_row_us <= 1.0 and stored.processed_rows == rows,
    )
    report.add(
        "writes (flushes) during those rows",
        f"{repo.writes}",
        f"{allowed_writes} allowed",
        ratio=None,
        target="≤ rows/1000 + s/1",
        ok=repo.writes <= allowed_writes,
    )
    conn.close()


SECTION = Section(name="tracker", title="tracker overhead", run=run)
