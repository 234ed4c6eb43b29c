"""resume: what a checkpoint or outcomes add to a flush, and fingerprinting against sha256sum."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._harness import (
    Call,
    Report,
    Section,
    alternating,
    call_by_call,
    connect,
    median_us,
)
from importjob import ImportJob, ImportJobRepository, fingerprint


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: flushes with and without a checkpoint, then a file's fingerprint."""
    checkpoint_line(url, report, calls=500 if quick else 5000)
    outcomes_line(url, report, calls=500 if quick else 5000)
    fingerprint_line(report, size=(64 if quick else 1024) << 20, rounds=2 if quick else 3)


def checkpoint_line(url: str, report: Report, calls: int) -> None:
    """Time a tracker's flush with a checkpoint against one without, call by call.

    The checkpoint is a resume position as the README's loop writes it.
    """
    flush_line(
        url,
        report,
        calls,
        "tracker flush with a checkpoint vs without: median",
        lambda i: {"checkpoint": {"row": 10 * (i + 1), "offset": 417 * (i + 1)}},
    )


def outcomes_line(url: str, report: Report, calls: int) -> None:
    """Time a tracker's flush carrying rows under 3 outcome labels against one with none."""
    labelled: dict[str, object] = {"outcomes": {"created": 6, "updated": 2, "duplicate": 1}}
    flush_line(
        url,
        report,
        calls,
        "tracker flush with rows under 3 outcome labels vs none: median",
        lambda i: labelled,
    )


def flush_line(
    url: str, report: Report, calls: int, name: str, extra: Callable[[int], dict[str, object]]
) -> None:
    """Time a tracker's flush carrying ``extra(i)`` against the same flush without, call by call.

    Both are what a tracker sends (counts with a skipped row, its worker, a
    batch id), into jobs of their own, so neither side's row is hotter.
    """
    conn = connect(url)
    repo = ImportJobRepository(conn)
    jobs = [repo.create(ImportJob(source_type="csv", filename="flush.csv")) for _ in range(2)]
    for job in jobs:
        repo.start(job.id, "bench")
    warm = 50

    def flush(side: int, with_extra: bool) -> Call:
        def call(i: int) -> object:
            more = extra(i) if with_extra else {}
            return repo.advance(
                jobs[side].id,
                10,
                8,
                1,
                skipped=1,
                worker_id="bench",
                batch_id=("bench", i + 1),
                **more,  # type: ignore[arg-type]
            )

        return call

    ours_call, floor_call = flush(0, True), flush(1, False)
    for i in range(warm):
        ours_call(i)
        floor_call(i)
    ours, floor = call_by_call(lambda i: ours_call(warm + i), lambda i: floor_call(warm + i), calls)
    ours_us, floor_us = median_us(ours), median_us(floor)
    report.add(
        name,
        f"{ours_us:.0f} µs",
        f"{floor_us:.0f} µs",
        ratio=ours_us / floor_us,
        target="≤ 1.1x",
        ok=ours_us / floor_us <= 1.1,
    )
    conn.close()


def fingerprint_line(report: Report, size: int, rounds: int) -> None:
    """Time `fingerprint` of a file against ``sha256sum`` on it, in alternating rounds.

    The file is read once before, so both read it from the page cache: the
    line compares the hashing loops, not the disk.
    """
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        report.add(
            "fingerprint vs sha256sum",
            "-",
            "no sha256sum",
            ratio=None,
            target="≥ 0.9x",
            ok=False,
        )
        return
    with tempfile.TemporaryDirectory(prefix="importjob-bench-") as work:
        path = Path(work) / "pairs.bin"
        block = os.urandom(1 << 20)
        with path.open("wb") as out:
            for _ in range(size >> 20):
                out.write(block)
        expected = fingerprint(path)
        times: dict[str, list[float]] = {"importjob": [], "sha256sum": []}
        for side in alternating(("importjob", "sha256sum"), rounds):
            started = time.perf_counter()
            if side == "importjob":
                assert fingerprint(path) == expected  # noqa: S101 - a wrong digest is no result
            else:
                digest = subprocess.run(  # noqa: S603 - our own file, a fixed tool
                    [sha256sum, str(path)], check=True, capture_output=True, text=True
                ).stdout.split()[0]
                assert digest == expected.sha256  # noqa: S101
            times[side].append(time.perf_counter() - started)
    ours, theirs = statistics.median(times["importjob"]), statistics.median(times["sha256sum"])
    spread = ", ".join(f"{size / t / 1e6:,.0f}" for t in times["importjob"])
    report.add(
        f"fingerprint of {size >> 20:,} MiB vs sha256sum: speed (MB/s of each round: {spread})",
        f"{size / ours / 1e6:,.0f} MB/s",
        f"{size / theirs / 1e6:,.0f} MB/s",
        ratio=theirs / ours,
        target="≥ 0.9x",
        ok=theirs / ours >= 0.9,
    )


SECTION = Section(name="resume", title="checkpoints and fingerprints", run=run)
