"""repo.watch: every change of a job driven by another process, over LISTEN/NOTIFY."""

from __future__ import annotations

import itertools
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from importjob import ImportJob, ImportJobStatus
from importjob._queries import query
from importjob.exceptions import ImportJobNotFoundError, InvalidFieldError

S = ImportJobStatus
WORKERS = Path(__file__).with_name("workers.py")
# A job is read at least this often without a notification (README), and a
# read on a busy machine of two shared cores may come this much later.
FALLBACK_PROMISE = 5.0
FALLBACK_MARGIN = 2.0


def _drive(db_url: str, job: ImportJob, steps: int, pause: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKERS), "drive", db_url, str(job.id), str(steps), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _new(side: Any) -> ImportJob:
    job: ImportJob = side.create(ImportJob(source_type="csv", filename="watched.csv"))
    return job


def test_a_watcher_sees_every_change_until_the_end(side: Any, db_url: str) -> None:
    job = _new(side)
    with _drive(db_url, job, steps=4, pause=0.2) as driver:
        seen = side.watch_all(job.id, timeout=30)
        assert driver.wait(timeout=30) == 0
    statuses = [snapshot.status for snapshot in seen]
    # Every status, in order, each change once, and the iterator ends at the end.
    assert [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]] == [
        S.PENDING,
        S.PROCESSING,
        S.COMPLETED,
    ]
    progress = [snapshot.processed_rows for snapshot in seen if snapshot.status is S.PROCESSING]
    assert progress == [0, 100, 200, 300, 400]
    assert seen[-1].processed_rows == 400
    assert all(a != b for a, b in itertools.pairwise(seen))


def test_a_watcher_survives_its_connection_being_cut(
    side: Any, db_url: str, conn: psycopg.Connection[Any]
) -> None:
    job = _new(side)
    cuts: list[int] = []

    def cut_once_processing() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = conn.execute("SELECT status FROM import_job WHERE id = %s", [job.id]).fetchone()
            if row and row[0] == "processing":
                killed = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'importjob watch'"
                    " AND datname = current_database()"
                ).fetchall()
                cuts.extend(1 for (ok,) in killed if ok)
                return
            time.sleep(0.02)

    cutter = threading.Thread(target=cut_once_processing)
    with _drive(db_url, job, steps=5, pause=0.3) as driver:
        cutter.start()
        seen = side.watch_all(job.id, timeout=30)
        cutter.join()
        assert driver.wait(timeout=30) == 0
    assert cuts == [1]
    assert seen[-1].status is S.COMPLETED
    assert seen[-1].processed_rows == 500
    # After the cut it re-read and went on: later progress was still seen.
    assert [s.processed_rows for s in seen if s.status is S.PROCESSING][-1] == 500


def test_a_job_deleted_while_watched(side: Any, conn: psycopg.Connection[Any]) -> None:
    job = _new(side)
    deleter = threading.Timer(
        0.3, lambda: conn.execute("DELETE FROM import_job WHERE id = %s", [job.id])
    )
    deleter.start()
    with pytest.raises(ImportJobNotFoundError):
        side.watch_all(job.id, timeout=10)
    deleter.join()


def test_watching_an_ended_job_yields_it_once(side: Any) -> None:
    job = _new(side)
    side.cancel(job.id)
    [snapshot] = side.watch_all(job.id)
    assert snapshot.status is S.CANCELLED


def test_watch_times_out_on_an_idle_job(side: Any) -> None:
    job = _new(side)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=str(job.id)):
        side.watch_all(job.id, timeout=0.3)
    assert time.monotonic() - started >= 0.3


def test_watch_unknown_job_or_bad_timeout(side: Any) -> None:
    with pytest.raises(ImportJobNotFoundError):
        side.watch_all("6f1c1d2e-3a45-4b67-8c9d-0e1f2a3b4c5d")
    job = _new(side)
    with pytest.raises(InvalidFieldError, match="timeout"):
        side.watch_all(job.id, timeout=-1)


def _notified(listener: psycopg.Connection[Any]) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=0.5)]


def _mark(conn: psycopg.Connection[Any], job: ImportJob) -> Any:
    """Return how long the job stays marked watched, or None."""
    [(left,)] = conn.execute(
        "SELECT watched_until - now() FROM import_job WHERE id = %s", [job.id]
    ).fetchall()
    return left


def _lapse(conn: psycopg.Connection[Any], job: ImportJob) -> None:
    # Time passes: the mark lies in the past.
    conn.execute(
        "UPDATE import_job SET watched_until = now() - interval '1 second' WHERE id = %s", [job.id]
    )


def test_only_a_watched_job_notifies(
    conn: psycopg.Connection[Any], connect: Any, repo: Any
) -> None:
    listener = connect()
    job = repo.create(ImportJob(source_type="csv", filename="n.csv"))
    listener.execute(f"LISTEN import_job_{job.id.hex}")
    # Nobody watches: writes send nothing.
    repo.advance(job.id, processed=1)
    repo.update_status(job.id, S.PROCESSING)
    assert _notified(listener) == []

    # Marked (as watch marks it): every statement that changes it notifies.
    conn.execute(query("watch"), {"id": job.id, "ttl": timedelta(minutes=1)})
    with conn.transaction():
        repo.advance(job.id, processed=1)
        repo.advance(job.id, processed=1)  # folds into one at commit
    repo.heartbeat(job.id, "worker-1")
    assert _notified(listener) == [str(job.id)] * 2

    # Lapsed: nothing again.
    _lapse(conn, job)
    _notified(listener)  # the change that moved the mark back
    repo.advance(job.id, processed=1)
    assert _notified(listener) == []

    conn.execute(query("watch"), {"id": job.id, "ttl": timedelta(minutes=1)})
    conn.execute("DELETE FROM import_job WHERE id = %s", [job.id])
    assert _notified(listener) == [str(job.id)]


def test_a_watcher_marks_its_job_while_it_watches(
    side: Any, conn: psycopg.Connection[Any], repo: Any
) -> None:
    job = _new(side)
    assert _mark(conn, job) is None
    during: list[Any] = []

    def look_then_cancel() -> None:
        during.append(_mark(conn, job))
        repo.cancel(job.id)

    [first, last] = side.watch_two(job.id, look_then_cancel, 10)
    assert (first.status, last.status) == (S.PENDING, S.CANCELLED)
    [left] = during
    # Within the registration's lifetime: it lapses by itself.
    assert timedelta(0) < left <= timedelta(seconds=60)


def test_a_change_made_while_the_watcher_registers_is_not_missed(
    side: Any, connect: Any, repo: Any, lock_waiters: Callable[..., None]
) -> None:
    job = _new(side)
    writer = connect()
    writer.autocommit = False
    # The job is not marked yet: this change's commit will notify nobody.
    writer.execute("UPDATE import_job SET processed_rows = 7 WHERE id = %s", [job.id])

    def commit_once_the_watcher_waits() -> None:
        lock_waiters(application_name="importjob watch")
        writer.commit()

    committer = threading.Thread(target=commit_once_the_watcher_waits)
    committer.start()
    # The mark waits for the writer's row lock, then reads its change.
    first, second = side.watch_two(job.id, lambda: repo.advance(job.id, processed=1), 30)
    committer.join()
    assert (first.processed_rows, second.processed_rows) == (7, 8)


def test_a_change_that_notifies_nobody_is_read_all_the_same(side: Any, connect: Any) -> None:
    job = _new(side)
    quiet = connect()
    # Triggers do not fire for this session (as for a logical replication
    # apply): only the watcher's fallback read can show its change.
    quiet.execute("SET session_replication_role = replica")
    changed_at: list[float] = []

    def change_quietly() -> None:
        quiet.execute("UPDATE import_job SET processed_rows = 5 WHERE id = %s", [job.id])
        changed_at.append(time.monotonic())

    first, second = side.watch_two(job.id, change_quietly, 30)
    assert (first.processed_rows, second.processed_rows) == (0, 5)
    assert time.monotonic() - changed_at[0] <= FALLBACK_PROMISE + FALLBACK_MARGIN


def test_a_killed_watchers_mark_lapses(
    conn: psycopg.Connection[Any], connect: Any, repo: Any, db_url: str
) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="killed.csv"))
    with subprocess.Popen(
        [sys.executable, str(WORKERS), "watch", db_url, str(job.id)],
        stdout=subprocess.PIPE,
        text=True,
    ) as watcher:
        assert watcher.stdout is not None
        assert watcher.stdout.readline() == "seen 0\n"  # marked and read
        watcher.send_signal(signal.SIGKILL)
        watcher.wait(timeout=10)
    # Left behind, but bounded: it lapses within the registration's lifetime.
    assert timedelta(0) < _mark(conn, job) <= timedelta(seconds=60)
    listener = connect()
    listener.execute(f"LISTEN import_job_{job.id.hex}")
    repo.advance(job.id, processed=1)
    assert _notified(listener) == [str(job.id)]  # not yet lapsed

    _lapse(conn, job)
    _notified(listener)
    repo.advance(job.id, processed=1)
    assert _notified(listener) == []  # lapsed: it costs nothing more


def test_a_slow_watcher_gets_a_burst_folded(repo: Any, db_url: str) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="burst.csv"))
    seen: list[ImportJob] = []
    with subprocess.Popen(
        [sys.executable, str(WORKERS), "advance", db_url, str(job.id), "500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as burst:
        # A watcher busier than the writer: notifications pile up between reads.
        for snapshot in repo.watch(job.id, timeout=5):
            seen.append(snapshot)
            time.sleep(0.05)
            if snapshot.processed_rows == 500:
                break
        assert burst.wait(timeout=60) == 0
    assert seen[-1].processed_rows == 500
    assert len(seen) < 100  # 500 changes, far fewer reads: folded, not queued


def _watch_connections(conn: psycopg.Connection[Any]) -> int:
    [(count,)] = conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'importjob watch' AND datname = current_database()"
    ).fetchall()
    return int(count)


def _take(side: Any, snapshots: Any) -> ImportJob:
    if side.kind == "async":
        job: ImportJob = side.runner.run(anext(snapshots))
        return job
    return next(snapshots)  # type: ignore[no-any-return]


def _stop(side: Any, snapshots: Any) -> None:
    if side.kind == "async":
        side.runner.run(snapshots.aclose())
    else:
        snapshots.close()


def test_the_watches_of_a_process_share_one_connection(
    side: Any, conn: psycopg.Connection[Any], repo: Any
) -> None:
    jobs = [_new(side) for _ in range(3)]
    # Two watches of one job and one of each other job, all open at once.
    watches = [side.repo.watch(job.id, timeout=30) for job in [*jobs, jobs[0]]]
    try:
        assert [_take(side, w).processed_rows for w in watches] == [0, 0, 0, 0]
        assert _watch_connections(conn) == 1
        for n, job in enumerate(jobs, start=1):
            repo.advance(job.id, processed=n)
        assert [_take(side, w).processed_rows for w in watches] == [1, 2, 3, 1]
        assert _watch_connections(conn) == 1
    finally:
        for w in watches:
            _stop(side, w)
    # The last watch gone, the connection closes by itself.
    deadline = time.monotonic() + 10
    while _watch_connections(conn) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _watch_connections(conn) == 0


def test_a_held_row_lock_stalls_no_other_watch(
    side: Any, conn: psycopg.Connection[Any], connect: Any, repo: Any
) -> None:
    held, other = _new(side), _new(side)
    holder = connect()
    holder.autocommit = False
    holder.execute("UPDATE import_job SET processed_rows = 7 WHERE id = %s", [held.id])
    held_watch = side.repo.watch(held.id, timeout=30)
    other_watch = side.repo.watch(other.id, timeout=30)
    try:
        # The mark gave up on the lock: the job was read unmarked, as committed.
        assert _take(side, held_watch).processed_rows == 0
        # The other job's changes go on reaching its watch while the row is held.
        assert _take(side, other_watch).processed_rows == 0
        for n in (1, 2):
            repo.advance(other.id, processed=1)
            assert _take(side, other_watch).processed_rows == n
        holder.commit()
        # The held job is marked and read again at its fallback read.
        started = time.monotonic()
        assert _take(side, held_watch).processed_rows == 7
        assert time.monotonic() - started <= FALLBACK_PROMISE + FALLBACK_MARGIN
    finally:
        holder.rollback()
        _stop(side, held_watch)
        _stop(side, other_watch)


def test_a_watch_works_past_descriptor_1024(
    side: Any, repo: Any, connect: Any, db_url: str
) -> None:
    # A busy process (a web server) holds more descriptors than select() takes.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    held = [socket.socketpair() for _ in range(600)]
    try:
        assert max(s.fileno() for pair in held for s in pair) >= 1024
        job = _new(side)
        first, second = side.watch_two(job.id, lambda: repo.advance(job.id, processed=3), 30)
        assert (first.processed_rows, second.processed_rows) == (0, 3)
    finally:
        for pair in held:
            for s in pair:
                s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
