"""async: importjob's own cost per call, sync and async, and 64 watchers beside an import.

The async/sync ratio of a call is mostly the driver's (psycopg's asyncio
wait), so it is printed for reference beside the bare driver's; what is held
to a target is the part importjob adds in each mode.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import multiprocessing
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from benchmarks._harness import (
    Report,
    Section,
    alternating,
    call_by_call,
    connect,
    median_us,
)
from importjob import AsyncImportJobRepository, ImportJob, ImportJobRepository, track
from importjob._queries import query


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: get_by_id async against sync, then the watchers beside an import."""
    async_lines(url, report, samples=500 if quick else 3000)
    watchers_line(url, report)


async def _async_call_by_call(
    ours: Callable[[], Awaitable[object]],
    floor: Callable[[], Awaitable[object]],
    calls: int,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> tuple[list[int], list[int]]:
    """Time ``ours`` and ``floor`` interleaved call by call, as `call_by_call` does in sync."""
    ours_ns: list[int] = []
    floor_ns: list[int] = []
    for index in range(calls):
        pair = ((ours, ours_ns), (floor, floor_ns))
        for target, samples in pair if index % 2 == 0 else pair[::-1]:
            started = clock()
            await target()
            samples.append(clock() - started)
    return ours_ns, floor_ns


def async_lines(url: str, report: Report, samples: int) -> None:
    """Measure importjob's own cost per call, sync and async, and the async/sync ratios.

    The own cost is ``get_by_id`` against the same statement on bare psycopg,
    on the same connection, call by call: the median of the pairs'
    differences in this thread's CPU time (`time.thread_time_ns`), the part
    of a call that is importjob's work. Wall-time differences carry the
    round trip's jitter, larger than the cost they would measure: their
    median is printed beside for reference. Sync and async need two
    connections, whose backends the kernel places independently: ten fresh
    pairs, the ratios taken within each pair.
    """
    conn = connect(url)
    job = ImportJobRepository(conn).create(ImportJob(source_type="csv", filename="async.csv"))
    text = query("get_by_id")
    params = {"id": job.id}
    loop = asyncio.new_event_loop()
    pairs, repeats, block = 10, 3, max(20, samples // 30)
    names = ("sync", "async", "sync floor", "async floor")
    per_pair: list[dict[str, float]] = []
    differences: dict[str, list[int]] = {"sync": [], "async": []}
    cpu_differences: dict[str, list[int]] = {"sync": [], "async": []}
    cpu = time.thread_time_ns
    for _ in range(pairs):
        sconn = connect(url)
        repo = ImportJobRepository(sconn)
        cursor = sconn.cursor(binary=True)  # as the repositories read rows
        aconn = loop.run_until_complete(psycopg.AsyncConnection.connect(url, autocommit=True))
        arepo = AsyncImportJobRepository(aconn)
        acursor = aconn.cursor(binary=True)

        def floor_call(_: int, cursor: Any = cursor) -> None:
            cursor.execute(text, params, prepare=True)
            cursor.fetchone()

        async def afloor_call(cursor: Any = acursor) -> None:
            await cursor.execute(text, params, prepare=True)
            await cursor.fetchone()

        def ours(_: int, repo: ImportJobRepository = repo) -> object:
            return repo.get_by_id(job.id)

        aours = functools.partial(arepo.get_by_id, job.id)
        # Past psycopg's prepare threshold on importjob's side.
        call_by_call(ours, floor_call, 20)
        loop.run_until_complete(_async_call_by_call(aours, afloor_call, 20))
        times: dict[str, list[int]] = {name: [] for name in names}
        for _ in range(repeats):
            # Sync and async in turn, so both modes see the same moments.
            sync_ours, sync_floor = call_by_call(ours, floor_call, block)
            async_ours, async_floor = loop.run_until_complete(
                _async_call_by_call(aours, afloor_call, block)
            )
            times["sync"] += sync_ours
            times["sync floor"] += sync_floor
            times["async"] += async_ours
            times["async floor"] += async_floor
            for mode, (ours_cpu, floor_cpu) in (
                ("sync", call_by_call(ours, floor_call, block, cpu)),
                (
                    "async",
                    loop.run_until_complete(_async_call_by_call(aours, afloor_call, block, cpu)),
                ),
            ):
                cpu_differences[mode] += [a - b for a, b in zip(ours_cpu, floor_cpu, strict=True)]
        for mode in ("sync", "async"):
            differences[mode] += [
                a - b for a, b in zip(times[mode], times[f"{mode} floor"], strict=True)
            ]
        sconn.close()
        loop.run_until_complete(aconn.close())
        per_pair.append({name: median_us(ns) for name, ns in times.items()})
    loop.close()
    conn.close()
    medians = {name: statistics.median(p[name] for p in per_pair) for name in names}

    def ratio(name: str) -> float:
        # Within each pair, then the median over the pairs: pooled timings
        # would mix placement regimes, whose round trips differ severalfold.
        return statistics.median(p[f"async{name}"] / p[f"sync{name}"] for p in per_pair)

    report.add(
        f"get_by_id median, async vs sync (median of {pairs} connection pairs)",
        f"{medians['async']:.1f} µs",
        f"{medians['sync']:.1f} µs",
        ratio=ratio(""),
        target="for reference",
        ok=True,
    )
    report.add(
        "bare psycopg, the same statement: async vs sync (the driver's ratio)",
        f"{medians['async floor']:.1f} µs",
        f"{medians['sync floor']:.1f} µs",
        ratio=ratio(" floor"),
        target="for reference",
        ok=True,
    )
    # What importjob itself adds to a call, the part of a call the library
    # owns: the rest is the driver's (in async, mostly its asyncio wait).
    for mode in ("sync", "async"):
        own = statistics.median(cpu_differences[mode]) / 1000
        wall = statistics.median(differences[mode]) / 1000
        report.add(
            f"importjob's own cost per call beyond the driver, {mode} (CPU; wall {wall:.1f} µs)",
            f"{own:.1f} µs",
            f"{medians[f'{mode} floor']:.1f} µs driver",
            ratio=None,
            target="≤ 5 µs",
            ok=own <= 5.0,
        )


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
