"""Section 6: the async repository against the sync one, and 64 watchers beside an import."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import multiprocessing
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from benchmarks._harness import Report, Section, alternating, connect, median_us
from importjob import AsyncImportJobRepository, ImportJob, ImportJobRepository, track
from importjob._queries import query


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: get_by_id async against sync, then the watchers beside an import."""
    async_lines(url, report, samples=500 if quick else 3000)
    watchers_line(url, report)


def async_lines(url: str, report: Report, samples: int) -> None:
    """Measure the async repository against the sync one.

    Sync and async calls need two connections, whose backends the kernel
    places independently: ten fresh pairs, each measured in alternating
    blocks, so placement averages out.
    """
    conn = connect(url)
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
        sconn = connect(url)
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
                own[mode].append(median_us(blocks[mode]) - median_us(blocks[f"{mode} floor"]))
        sconn.close()
        loop.run_until_complete(aconn.close())
        pairs_medians.append({name: median_us(times) for name, times in pair.items()})
    loop.close()
    # Each pair's two backends sit where the kernel put them, so timings
    # pooled over pairs mix regimes (~30 µs or ~100 µs a round trip here):
    # the ratio is taken within each pair, and its median over the pairs given.
    medians = {name: statistics.median(m[name] for m in pairs_medians) for name in results}
    ratio = statistics.median(m["async"] / m["sync"] for m in pairs_medians)
    report.add(
        f"get_by_id median, async vs sync (median of {pairs} connection pairs)",
        f"{medians['async']:.1f} µs",
        f"{medians['sync']:.1f} µs",
        ratio=ratio,
        target="≤ 1.2x",
        ok=ratio <= 1.2,
    )
    report.add(
        "the same statement, bare psycopg: AsyncConnection vs Connection",
        f"{medians['async floor']:.1f} µs",
        f"{medians['sync floor']:.1f} µs",
        ratio=statistics.median(m["async floor"] / m["sync floor"] for m in pairs_medians),
        target="for reference",
        ok=True,
    )
    # What importjob itself adds to a call in each mode: the part of the
    # ratio the library owns, the rest being the driver's asyncio wait.
    report.add(
        "importjob's own cost per call beyond the driver: async vs sync",
        f"{statistics.median(own['async']):.1f} µs",
        f"{statistics.median(own['sync']):.1f} µs",
        ratio=None,
        target="for reference",
        ok=True,
    )
    conn.close()


def watchers_line(url: str, report: Report) -> None:
    """Time a tracked import alone and beside 64 async watchers, five times each."""
    times: dict[str, list[float]] = {"alone": [], "watched": []}
    # Alternating which goes first, so a drift falls on both.
    for condition in alternating(("alone", "watched"), 5):
        times[condition].append(_tracked_import(url, 64 if condition == "watched" else 0))
    ratio = statistics.median(times["watched"]) / statistics.median(times["alone"])
    report.add(
        "tracked import with 64 async watchers polling get_by_id every 1 s",
        f"{statistics.median(times['watched']):.2f} s",
        f"{statistics.median(times['alone']):.2f} s alone",
        ratio=ratio,
        target="≤ 1.1x",
        ok=ratio <= 1.1,
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
    conn = connect(url)
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


SECTION = Section(name="async", title="async", run=run)
