"""`importjob worker`: real worker processes, a real PostgreSQL, handlers of a test module."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest

from importjob import (
    AsyncTracker,
    ImportJob,
    ImportJobRepository,
    ImportJobStatus,
    Tracker,
    Worker,
    track,
)
from importjob.exceptions import ImportJobReleasedError

S = ImportJobStatus
COMMAND = Path(sys.executable).with_name("importjob")
HANDLERS = textwrap.dedent(
    """
    import asyncio, os, time

    def rows(job, t):
        # One row every 10 ms from the checkpoint on, each checkpointed.
        start = job.checkpoint["row"] if job.checkpoint else 0
        for row in range(start, job.total_rows):
            time.sleep(0.01)
            t.ok(outcome="created")
            t.checkpoint({"row": row + 1})

    def picky(job, t):
        if job.filename == "bad.csv":
            raise RuntimeError("the embedding service is down")
        t.ok(job.total_rows)

    async def rows_async(job, t):
        for _ in range(job.total_rows):
            await asyncio.sleep(0.001)
            await t.ok()
    """
)
Start = Callable[..., subprocess.Popen[str]]


def _wait(what: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "it never happened"
        time.sleep(0.02)


@pytest.fixture
def start(db_url: str, tmp_path: Path) -> Iterator[Start]:
    """Start ``importjob worker handlers:NAME ...`` over the test's database."""
    (tmp_path / "handlers.py").write_text(HANDLERS)
    started: list[subprocess.Popen[str]] = []

    def _start(name: str, *options: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [str(COMMAND), "worker", f"handlers:{name}", "--database", db_url, *options],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield _start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _listening(conn: psycopg.Connection[Any], sessions: int = 2) -> list[tuple[int, Any]]:
    """Wait for the worker's sessions to be idle; return each one's pid and last change."""
    query = (
        "SELECT pid, state_change, query, state FROM pg_stat_activity"
        " WHERE application_name = 'importjob worker' AND datname = current_database()"
        # The sessions that ran a statement: one that runs one later shows up.
        " AND query <> ''"
        " ORDER BY pid"
    )
    # Listening, and its first claim (of the jobs pending before it started) done.
    _wait(lambda: any("LISTEN" in r[2] for r in conn.execute(query).fetchall()))
    _wait(lambda: any("next_job" in r[2] for r in conn.execute(query).fetchall()))
    _wait(lambda: len(conn.execute(query).fetchall()) >= sessions)
    # Each one idle: a statement still running would change its state when it ends.
    _wait(lambda: all(r[3] == "idle" for r in conn.execute(query).fetchall()))
    return [(pid, changed) for pid, changed, _, _ in conn.execute(query).fetchall()]


def _job(repo: ImportJobRepository, job_id: Any) -> ImportJob:
    job = repo.get_by_id(job_id)
    assert job is not None
    return job


def test_a_job_is_picked_up_as_it_is_created_and_an_idle_worker_sends_nothing(
    repo: ImportJobRepository, conn: psycopg.Connection[Any], start: Start
) -> None:
    worker = start("rows", "--concurrency", "2")
    idle = _listening(conn)
    time.sleep(2)  # eight of the loop's waits, well within its fallback claim (5 s)
    assert _listening(conn) == idle  # no session of the worker ran a statement
    job = repo.create(ImportJob(source_type="csv", filename="a.csv", total_rows=20))
    _wait(lambda: _job(repo, job.id).status is S.COMPLETED, timeout=30)
    done = _job(repo, job.id)
    assert (done.processed_rows, done.outcomes, done.checkpoint) == (
        20,
        {"created": 20},
        {"row": 20},
    )
    assert done.worker_id is not None
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert f"job {job.id} started: a.csv" in err
    assert f"job {job.id} completed: 20 rows" in err


def test_sigterm_hands_running_jobs_back_and_another_worker_resumes_them(
    repo: ImportJobRepository, conn: psycopg.Connection[Any], start: Start
) -> None:
    worker = start("rows", "--concurrency", "2")
    jobs = [
        repo.create(ImportJob(source_type="csv", filename=f"{n}.csv", total_rows=400))
        for n in range(2)
    ]
    _wait(lambda: all(_job(repo, j.id).processed_rows >= 20 for j in jobs))
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert err.count("handed back to pending (the worker is stopping)") == 2
    for job in jobs:
        back = _job(repo, job.id)
        # Resumable: pending, its counts those of its checkpoint.
        assert back.status is S.PENDING
        assert back.worker_id is None
        assert back.checkpoint is not None
        assert back.processed_rows == back.checkpoint["row"] > 0
        assert back.processed_rows < 400
    again = start("rows", "--concurrency", "2")
    _wait(lambda: all(_job(repo, j.id).status is S.COMPLETED for j in jobs))
    for job in jobs:
        done = _job(repo, job.id)
        # Every row counted once across the two workers.
        assert (done.processed_rows, done.success_count, done.outcomes) == (
            400,
            400,
            {"created": 400},
        )
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=60) == 0


def test_a_handler_s_exception_fails_its_job_and_the_worker_goes_on(
    repo: ImportJobRepository, start: Start
) -> None:
    bad = repo.create(ImportJob(source_type="csv", filename="bad.csv", total_rows=3))
    good = repo.create(ImportJob(source_type="csv", filename="good.csv", total_rows=3))
    worker = start("picky")
    _wait(lambda: _job(repo, good.id).status is S.COMPLETED)
    failed = _job(repo, bad.id)
    assert failed.status is S.FAILED
    assert failed.errors[-1]["message"] == "the embedding service is down"
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert f"job {bad.id} failed: RuntimeError: the embedding service is down" in err


def test_a_coroutine_handler_runs_with_an_async_tracker(
    repo: ImportJobRepository, start: Start
) -> None:
    job = repo.create(ImportJob(source_type="json", filename="a.json", total_rows=50))
    worker = start("rows_async", "--concurrency", "3")
    _wait(lambda: _job(repo, job.id).status is S.COMPLETED)
    assert _job(repo, job.id).processed_rows == 50
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0


def test_the_jobs_of_a_lost_worker_are_requeued_and_done(
    repo: ImportJobRepository, conn: psycopg.Connection[Any], start: Start
) -> None:
    lost = repo.create(ImportJob(source_type="csv", filename="lost.csv", total_rows=10))
    repo.start(lost.id, "a-worker-that-died")
    repo.advance(lost.id, 4, 4, 0, checkpoint={"row": 4})
    conn.execute(
        "UPDATE import_job SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", (lost.id,)
    )
    worker = start("rows", "--rescue-after", "1s")
    _wait(lambda: _job(repo, lost.id).status is S.COMPLETED)
    done = _job(repo, lost.id)
    assert done.processed_rows == 10  # resumed from row 4
    assert done.errors[-1]["type"] == "WorkerLostError"
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert f"job {lost.id}: its worker sent no heartbeat for 0:00:01; back to pending" in err


def test_release_hands_back_only_its_own_worker_s_processing_job(
    repo: ImportJobRepository,
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="r.csv"))
    assert repo.release(job.id, "w1") is None  # pending: nothing to hand back
    repo.start(job.id, "w1")
    repo.advance(job.id, 3, 3, 0, checkpoint={"row": 3})
    assert repo.release(job.id, "w2") is None  # not w2's
    back = repo.release(job.id, "w1")
    assert back is not None
    assert (back.status, back.worker_id, back.started_at) == (S.PENDING, None, None)
    assert (back.processed_rows, back.checkpoint) == (3, {"row": 3})
    assert repo.claim_next("w3") is not None


def test_a_tracker_asked_to_stop_hands_its_job_back_at_the_next_row(
    repo: ImportJobRepository,
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="s.csv", total_rows=10))
    asked = False
    with pytest.raises(ImportJobReleasedError), track(repo, job.id, stop=lambda: asked) as t:
        for row in range(10):
            t.ok()
            t.checkpoint({"row": row + 1})
            asked = row == 5
    back = _job(repo, job.id)
    # Rows up to the last checkpoint flushed; the one after it is redone.
    assert (back.status, back.processed_rows, back.checkpoint) == (S.PENDING, 6, {"row": 6})
    assert repo.rescue_stale(timedelta(0)) == []


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_worker_claims_another_owner_s_job_among_its_next_two_claims(
    repo: ImportJobRepository, conn: psycopg.Connection[Any], db_url: str, concurrency: int
) -> None:
    conn.execute(
        "INSERT INTO import_job (source_type, filename, owner, total_rows)"
        " SELECT 'csv', 'big.csv', 'tenant-a', 1 FROM generate_series(1, 10000)"
    )

    def handle(job: ImportJob, t: Tracker) -> None:
        time.sleep(0.005)
        t.ok()

    worker = Worker(handle, db_url, concurrency=concurrency)
    running = threading.Thread(target=worker.run)
    running.start()
    try:
        _wait(lambda: _count(conn, "status = 'completed'") >= 3 * concurrency)  # busy
        single = repo.create(ImportJob(source_type="csv", filename="one.csv", owner="tenant-b"))
        # Past its commit: created_at is its transaction's start, and a claim
        # that began before the commit could not see it.
        [(created,)] = conn.execute("SELECT now()").fetchall()
        _wait(lambda: _job(repo, single.id).status is S.COMPLETED)
    finally:
        worker.stop()
        running.join(60)
    between = (created, _job(repo, single.id).started_at)
    before = _count(conn, "started_at > %s AND started_at < %s", between)
    assert before <= 1  # claimed first or second after its creation


def _count(conn: psycopg.Connection[Any], where: LiteralString, params: Any = ()) -> int:
    row = conn.execute("SELECT count(*) FROM import_job WHERE " + where, params).fetchone()
    assert row is not None
    return int(row[0])


def test_coroutine_handlers_run_as_tasks_of_one_event_loop_n_at_a_time(
    repo: ImportJobRepository, db_url: str
) -> None:
    together = 3
    jobs = [repo.create(ImportJob(source_type="csv", filename=f"{n}.csv")) for n in range(together)]
    seen: list[tuple[int, asyncio.AbstractEventLoop]] = []

    async def handle(job: ImportJob, t: AsyncTracker) -> None:
        seen.append((threading.get_ident(), asyncio.get_running_loop()))
        # Each waits until all three have started: they end only if they run together.
        while len(seen) < together:
            await asyncio.sleep(0.01)
        await t.ok()

    worker = Worker(handle, db_url, concurrency=together)
    running = threading.Thread(target=worker.run)
    running.start()
    try:
        _wait(lambda: all(_job(repo, job.id).status is S.COMPLETED for job in jobs))
    finally:
        worker.stop()
        running.join(60)
    assert not running.is_alive()
    assert len(seen) == together
    assert len(set(seen)) == 1  # one thread, one loop
