"""writes: writes that scale.

Sixteen writer processes flush into 200 PROCESSING jobs at random, as
workers of many imports do. Three conditions, in alternating rounds so that
the shared machine's drift falls on all of them: the table as shipped with
nobody watching; as shipped with 10 of the jobs followed by ``watch`` in
another process; with the notify trigger disabled, the floor a write costs
without the notification; and with every user trigger disabled (the row's
rules too, which a plain table holds as CHECK constraints and so the floor
keeps), printed for reference. Then the share of those flushes that were HOT
updates, pgbench with the flush statement as shipped and with the notify
trigger disabled, and how long a watcher takes to see a committed change.

Every line measures whatever schema is installed.
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import threading
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql

from benchmarks._harness import (
    ADVANCE_ONE_ROW,
    BENCH_DB,
    Report,
    Section,
    alternating,
    connect,
    drop_database,
    fresh_database,
    new_jobs,
    pgbench,
    pgbench_script,
)
from importjob import ImportJobRepository

WRITERS = 16
JOBS = 200
WATCHED = 10
CONDITIONS = ("unwatched", "watched", "bare", "all off")
# A tracker's flush of 10 rows, one of them failed.
FLUSH: dict[str, Any] = {"processed": 10, "success": 9, "errors": 1}
DATABASE = BENCH_DB + "_writes"


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section in a database of its own: 200 jobs and nothing else."""
    writes_url = fresh_database(DATABASE)
    try:
        writes_lines(
            writes_url,
            report,
            # Nine rounds of each condition: on shared cores one round of
            # sixteen writers swings widely, and the median must hold its
            # target from run to run.
            rounds=2 if quick else 9,
            seconds=1.5 if quick else 3.0,
            samples=60 if quick else 300,
        )
    finally:
        drop_database(DATABASE)


# The triggers: as shipped, the notify trigger off (bare), or all user triggers off.


def _shipped_triggers(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Return each user trigger of import_job and its state as shipped (pg_trigger.tgenabled)."""
    rows = conn.execute(
        "SELECT tgname, tgenabled FROM pg_trigger"
        " WHERE tgrelid = 'import_job'::regclass AND NOT tgisinternal"
    ).fetchall()
    return dict(rows)


_ENABLE = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def _set_triggers(conn: psycopg.Connection[Any], shipped: dict[str, str], condition: str) -> None:
    """Put import_job's user triggers as shipped, then disable what ``condition`` turns off."""
    for name, state in shipped.items():
        conn.execute(
            sql.SQL("ALTER TABLE import_job {} TRIGGER {}").format(
                sql.SQL(_ENABLE[state]), sql.Identifier(name)
            )
        )
    if condition == "bare":
        conn.execute("ALTER TABLE import_job DISABLE TRIGGER import_job_notify")
    elif condition == "all off":
        conn.execute("ALTER TABLE import_job DISABLE TRIGGER USER")


# The writers and the watchers, each in processes of their own.


def _flush_stats(conn: psycopg.Connection[Any]) -> None:
    """Have this connection's backend write out its statistics now.

    A backend writes them when it goes idle, at most once a second
    (PostgreSQL 15+; before, a collector gathers them within half a second):
    forced, the counts read after a round hold all of that round's updates.
    """
    if conn.info.server_version >= 150000:
        conn.execute("SELECT pg_stat_force_next_flush()")


def _writer(
    url: str, jobs: list[uuid.UUID], number: int, *, rounds: int, window: Any, go: Any, out: Any
) -> None:
    """Flush into random jobs during each round's window; put each round's calls on ``out``."""
    conn = connect(url)
    repo = ImportJobRepository(conn)
    pick = random.Random(number).choice  # noqa: S311 - which job, not a secret
    worker_id = f"bench-writer-{number}"
    for _ in range(20):  # past psycopg's prepare threshold
        repo.advance(pick(jobs), **FLUSH, worker_id=worker_id)
    _flush_stats(conn)
    go.wait()  # ready: the first round's window is set after this
    for _ in range(rounds):
        go.wait()  # a barrier with the parent, which set the round's window before it
        start_at, end_at = window[0], window[1]
        while time.monotonic() < start_at:
            time.sleep(0.001)
        calls = 0
        while time.monotonic() < end_at:
            repo.advance(pick(jobs), **FLUSH, worker_id=worker_id)
            calls += 1
        _flush_stats(conn)
        out.put(calls)
    conn.close()


def _follow(url: str, job_id: uuid.UUID, stop: Any, seen: list[int], at: int) -> None:
    """Follow one job with watch until ``stop``; count its snapshots in ``seen[at]``."""
    repo = ImportJobRepository(connect(url))
    while not stop.is_set():
        try:
            for _ in repo.watch(job_id, timeout=1.0):
                seen[at] += 1
                if stop.is_set():
                    break  # closes the generator, and with it the watch's connection
        except TimeoutError:
            continue
    repo.connection.close()


def _watchers(url: str, jobs: list[uuid.UUID], ready: Any, stop: Any, out: Any) -> None:
    """Follow ``jobs``, one thread each; say when all watch, then count snapshots until ``stop``."""
    seen = [0] * len(jobs)
    threads = [
        threading.Thread(target=_follow, args=(url, job, stop, seen, at))
        for at, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    # The first snapshot comes after the watch listens: from then on it sees every change.
    while not all(seen):
        time.sleep(0.01)
    ready.set()
    for thread in threads:
        thread.join()
    out.put(sum(seen))


def _upd_counts(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Return import_job's updates and HOT updates so far, as the statistics have them."""
    return conn.execute(  # type: ignore[return-value]
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
        " WHERE relid = 'import_job'::regclass"
    ).fetchone()


class _Rounds:
    """The four conditions in alternating rounds, and what each round measured."""

    def __init__(self, url: str, jobs: list[uuid.UUID], rounds: int, seconds: float) -> None:
        self.url, self.jobs, self.seconds = url, jobs, seconds
        self.order = alternating(CONDITIONS, rounds)
        self.rates: dict[str, list[float]] = {condition: [] for condition in CONDITIONS}
        self.snapshots = 0
        self.updates = self.hot = self.unwatched_calls = 0

    def run(self, admin: psycopg.Connection[Any], shipped: dict[str, str]) -> None:
        """Start the writers, measure every round, and leave the triggers as shipped."""
        spawn = multiprocessing.get_context("spawn")
        window, go, out = spawn.Array("d", 2), spawn.Barrier(WRITERS + 1), spawn.Queue()
        writers = [
            spawn.Process(
                target=_writer,
                args=(self.url, self.jobs, n),
                kwargs={"rounds": len(self.order), "window": window, "go": go, "out": out},
                daemon=True,  # gone with this process, should a round fail
            )
            for n in range(WRITERS)
        ]
        for writer in writers:
            writer.start()
        try:
            go.wait(timeout=300)  # every writer started and warmed up
            for condition in self.order:
                _set_triggers(admin, shipped, condition)
                watchers = self._start_watchers(spawn) if condition == "watched" else None
                before = _upd_counts(admin)
                window[0] = time.monotonic() + 0.2
                window[1] = window[0] + self.seconds
                go.wait(timeout=120)
                calls = sum(out.get(timeout=self.seconds + 120) for _ in writers)
                rate = calls / self.seconds
                self.rates[condition].append(rate)
                print(f"    {condition}: {rate:,.0f} calls/s", flush=True)
                if condition == "unwatched":
                    if admin.info.server_version < 150000:
                        time.sleep(1.0)  # the collector's half second, and some
                    after = _upd_counts(admin)
                    self.updates += after[0] - before[0]
                    self.hot += after[1] - before[1]
                    self.unwatched_calls += calls
                if watchers is not None:
                    self.snapshots += self._stop_watchers(admin, *watchers)
        finally:
            _set_triggers(admin, shipped, "shipped")
            go.abort()  # after the last round no writer waits; after a failure, none waits forever
            for writer in writers:
                writer.join(60)

    def _start_watchers(self, spawn: Any) -> tuple[Any, Any, Any]:
        ready, stop, out = spawn.Event(), spawn.Event(), spawn.Queue()
        process = spawn.Process(
            target=_watchers, args=(self.url, self.jobs[:WATCHED], ready, stop, out), daemon=True
        )
        process.start()
        if not ready.wait(60):
            raise RuntimeError("the watchers did not start")
        return process, stop, out

    def _stop_watchers(
        self, admin: psycopg.Connection[Any], process: Any, stop: Any, out: Any
    ) -> int:
        stop.set()
        # A change to each watched job wakes its watcher at once, to see the stop
        # (else it sees it when its watch times out, within a second).
        repo = ImportJobRepository(admin)
        for job in self.jobs[:WATCHED]:
            repo.advance(job)
        _flush_stats(admin)  # those updates are not the next round's
        seen: int = out.get(timeout=60)
        process.join(60)
        return seen


# pgbench with the flush statement, for reference.


def _pgbench_rates(
    admin: psycopg.Connection[Any],
    shipped: dict[str, str],
    jobs: list[uuid.UUID],
    rounds: int,
    seconds: float,
) -> dict[str, float] | None:
    """Return pgbench's median tps, as shipped and the notify trigger off, in alternating runs."""
    admin.execute("CREATE TABLE IF NOT EXISTS bench_client (n int PRIMARY KEY, id uuid NOT NULL)")
    admin.execute("TRUNCATE bench_client")
    admin.cursor().executemany(
        "INSERT INTO bench_client VALUES (%s, %s)", list(enumerate(jobs, start=1))
    )
    params = {**ADVANCE_ONE_ROW, **FLUSH, "worker_id": "bench-pgbench"}
    # A random job per transaction, as the writers do.
    pick = f"\\set n random(1, {len(jobs)})\n"
    script = pick + pgbench_script(
        admin, "advance", params, "(SELECT id FROM bench_client WHERE n = :n)"
    )
    tps: dict[str, list[float]] = {"shipped": [], "bare": []}
    try:
        for condition in alternating(("shipped", "bare"), rounds):
            _set_triggers(admin, shipped, condition)
            found = pgbench(DATABASE, script, WRITERS, seconds)
            if found is None:
                return None
            tps[condition].append(found)
    finally:
        _set_triggers(admin, shipped, "shipped")
    return {condition: statistics.median(found) for condition, found in tps.items()}


# How soon a watcher sees a committed change.


def _latency_watcher(url: str, job_id: uuid.UUID, last: int, ready: Any, out: Any) -> None:
    """Watch the job; put on ``out`` when each processed count was first seen (monotonic)."""
    repo = ImportJobRepository(connect(url))
    seen: dict[int, float] = {}
    for snapshot in repo.watch(job_id, timeout=30):
        now = time.monotonic()
        seen.setdefault(snapshot.processed_rows, now)
        ready.set()  # the first snapshot comes once the watch listens
        if snapshot.processed_rows >= last:
            break
    out.put(seen)
    repo.connection.close()


def _latencies(url: str, admin: psycopg.Connection[Any], samples: int) -> list[float]:
    """Return the ms from each change's commit to the watcher's snapshot of it.

    This process commits ``advance(processed=1)`` every ~10 ms, far apart
    enough that each change gets a snapshot of its own, and notes
    ``time.monotonic()`` when the call returns; the watcher, in a process
    of its own, notes it when ``watch`` yields the snapshot with that count.
    CLOCK_MONOTONIC is one clock for the whole machine, so the two compare.
    A change folded into the next one's snapshot gives no sample.
    """
    [job] = new_jobs(admin, 1, "processing")
    spawn = multiprocessing.get_context("spawn")
    ready, out = spawn.Event(), spawn.Queue()
    watcher = spawn.Process(
        target=_latency_watcher, args=(url, job, samples, ready, out), daemon=True
    )
    watcher.start()
    if not ready.wait(60):
        raise RuntimeError("the watcher did not start")
    repo = ImportJobRepository(admin)
    jitter = random.Random(0)  # noqa: S311 - spacing, not a secret
    committed: dict[int, float] = {}
    for count in range(1, samples + 1):
        time.sleep(0.008 + jitter.random() * 0.004)
        repo.advance(job, processed=1, success=1)
        committed[count] = time.monotonic()
    seen: dict[int, float] = out.get(timeout=60)
    watcher.join(60)
    return [(seen[count] - at) * 1000 for count, at in committed.items() if count in seen]


# The lines.


def _paired(rates: dict[str, list[float]], condition: str, floor: str) -> float:
    """Return the median, over the rotations, of the condition's rate over the floor's.

    Each rotation measures every condition once, within seconds; over the
    section's minutes a shared machine drifts, and a ratio of the
    conditions' medians mixes that drift in. Round ``i`` of every condition
    belongs to rotation ``i``.
    """
    return statistics.median(
        mine / theirs for mine, theirs in zip(rates[condition], rates[floor], strict=True)
    )


def writes_lines(url: str, report: Report, rounds: int, seconds: float, samples: int) -> None:
    """Measure the writers in alternating rounds, the HOT share, pgbench, and watch latency."""
    admin = connect(url)
    shipped = _shipped_triggers(admin)
    jobs = new_jobs(admin, JOBS, "processing")
    admin.execute("VACUUM ANALYZE import_job")
    admin.execute("CHECKPOINT")  # the dirty pages of the sections before, written out now
    measured = _Rounds(url, jobs, rounds, seconds)
    measured.run(admin, shipped)
    ceiling = _pgbench_rates(admin, shipped, jobs, rounds=2 if rounds > 2 else 1, seconds=seconds)
    latencies = _latencies(url, admin, samples)
    admin.close()

    rate = {condition: statistics.median(found) for condition, found in measured.rates.items()}
    bare = f"{rate['bare']:,.0f}/s off"
    unwatched = _paired(measured.rates, "unwatched", "bare")
    report.add(
        f"{WRITERS} writers on {JOBS} jobs, none watched: calls/s vs notify trigger off",
        f"{rate['unwatched']:,.0f}/s",
        bare,
        ratio=unwatched,
        target="≥ 0.9x",
        ok=unwatched >= 0.9,
    )
    report.add(
        "the same, none watched, vs every user trigger off (the row's rules too)",
        f"{rate['unwatched']:,.0f}/s",
        f"{rate['all off']:,.0f}/s off",
        ratio=_paired(measured.rates, "unwatched", "all off"),
        target="for reference",
        ok=True,
    )
    report.add(
        f"pgbench, {WRITERS} clients, the flush statement: as shipped vs notify trigger off",
        "-" if ceiling is None else f"{ceiling['shipped']:,.0f}/s",
        "-" if ceiling is None else f"{ceiling['bare']:,.0f}/s off",
        ratio=None if ceiling is None else ceiling["shipped"] / ceiling["bare"],
        target="for reference",
        ok=True,
    )
    watched = _paired(measured.rates, "watched", "bare")
    report.add(
        f"the same, {WATCHED} of the jobs followed by watch ({measured.snapshots:,} snapshots)",
        f"{rate['watched']:,.0f}/s",
        bare,
        ratio=watched,
        target="≥ 0.8x",
        ok=watched >= 0.8,
    )
    # Every advance is one UPDATE: fewer in the statistics means they were not all written out.
    complete = measured.updates >= measured.unwatched_calls
    share = measured.hot / measured.updates if measured.updates else 0.0
    report.add(
        "HOT share of the flushes (pg_stat_user_tables, unwatched rounds)"
        + ("" if complete else " [statistics incomplete]"),
        f"{share:.2f}",
        f"{measured.hot:,} of {measured.updates:,}",
        ratio=None,
        target="≥ 0.9",
        ok=share >= 0.9 and complete,
    )
    if not latencies:
        raise RuntimeError("the watcher saw no change")
    for name, value, limit in (
        ("median", statistics.median(latencies), 5.0),
        ("p99", statistics.quantiles(latencies, n=100, method="inclusive")[98], 50.0),
    ):
        report.add(
            f"watch latency, from commit to snapshot: {name}",
            f"{value:.2f} ms",
            f"{len(latencies)} of {samples} seen",
            ratio=None,
            target=f"≤ {limit:.0f} ms",
            ok=value <= limit,
        )


SECTION = Section(name="writes", title="writes that scale", run=run)
