"""errors: many failed rows cost time in proportion, and the errors column stays bounded."""

from __future__ import annotations

import time

from benchmarks._harness import Report, Section, connect
from importjob import ImportJob, ImportJobRepository, track


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: 10,000 failed rows against 1,000, through the tracker on one job."""
    errors_lines(url, report)


def _failing_import(url: str, failures: int) -> tuple[float, int, int, int]:
    conn = connect(url)
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


def errors_lines(url: str, report: Report) -> None:
    """10,000 failed rows against 1,000, through the tracker on one job."""
    small = min((_failing_import(url, 1_000) for _ in range(3)), key=lambda r: r[0])
    large = min((_failing_import(url, 10_000) for _ in range(3)), key=lambda r: r[0])
    ratio = large[0] / small[0]
    report.add(
        "10,000 failed rows vs 1,000: time",
        f"{large[0] * 1000:.0f} ms",
        f"{small[0] * 1000:.0f} ms",
        ratio=ratio,
        target="≤ 12x",
        ok=ratio <= 12,
    )
    report.add(
        f"errors column after 10,000 ({large[2]} kept, {large[3]} dropped)",
        f"{large[1]:,} B",
        f"{small[1]:,} B after 1,000",
        ratio=large[1] / small[1],
        target="bounded",
        ok=large[2] == 1000 and large[1] <= small[1] * 1.05,
    )


SECTION = Section(name="errors", title="errors at scale", run=run)
