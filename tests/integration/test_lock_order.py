"""Lock order: every writer locks a chunk before its parent, so none deadlocks.

A chunk's change of status takes its parent's row lock in its trigger
(import_job_chunk_moved), after the chunk's own. A statement that locks a
parent and its chunks (a watch's mark, a cancel) must take them in that
order too, or it and a worker's claim each hold what the other waits for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from importjob import Chunk, ImportJob, ImportJobRepository, ImportJobStatus
from importjob._queries import query
from importjob.exceptions import ImportJobCancelledError, InvalidStatusTransitionError

S = ImportJobStatus
Connect = Any


def _chunked(repo: ImportJobRepository, chunks: int) -> tuple[ImportJob, list[ImportJob]]:
    parent, children = repo.create_chunked(
        ImportJob(source_type="csv", filename="big.csv"),
        [Chunk(10, {"n": n}) for n in range(chunks)],
    )
    return parent, children


def _mark(conn: psycopg.Connection[Any], job_id: Any) -> Any:
    # The statement a watch runs to mark a job and read it, as repo.watch and
    # the dashboard's listener run it.
    return conn.execute(query("watch"), {"id": job_id, "ttl": timedelta(seconds=30)}).fetchone()


def test_a_mark_waits_for_a_claimed_chunk_without_holding_its_parent(
    repo: ImportJobRepository,
    connect: Connect,
    conn: psycopg.Connection[Any],
    lock_waiters: Callable[..., None],
) -> None:
    parent, children = _chunked(repo, 2)
    claimer = connect()
    marker = connect()
    # Past deadlock_timeout (1 s): a deadlock would be found before either gives up.
    for c in (claimer, marker):
        c.execute("SET lock_timeout = '5s'")
    marked: list[Any] = []
    failed: list[BaseException] = []

    def mark() -> None:
        try:
            marked.append(_mark(marker, parent.id))
        except BaseException as exc:  # the test's thread reports to the test
            failed.append(exc)

    with claimer.transaction():
        # A worker's claim: the chunk's lock, then (its trigger) the parent's.
        claimer.execute("SELECT id FROM import_job WHERE id = %s FOR UPDATE", [children[0].id])
        thread = threading.Thread(target=mark)
        thread.start()
        lock_waiters()
        claimer.execute(
            "UPDATE import_job SET status = 'processing', started_at = now(),"
            " heartbeat_at = now(), worker_id = 'w1' WHERE id = %s",
            [children[0].id],
        )
    thread.join(timeout=10)
    assert not failed, failed
    assert marked
    assert marked[0] is not None
    # Both took effect: the chunk is claimed, and the parent and its chunks are marked.
    rows = conn.execute(
        "SELECT id, status, watched_until > now() FROM import_job WHERE id = %s OR parent_id = %s",
        [parent.id, parent.id],
    ).fetchall()
    assert {row[0]: (row[1], row[2]) for row in rows} == {
        parent.id: ("processing", True),
        children[0].id: ("processing", True),
        children[1].id: ("pending", True),
    }


@pytest.mark.parametrize("cancel", [False, True], ids=["to-the-end", "cancelled"])
def test_claims_ends_marks_and_a_cancel_racing_never_deadlock(
    repo: ImportJobRepository, connect: Connect, cancel: bool
) -> None:
    # Workers claim and end chunks while watches mark the parent over and
    # over, and a cancel of the parent may come in the middle.
    parent, _ = _chunked(repo, 64)
    stop = threading.Event()
    failed: list[BaseException] = []

    def work(name: str) -> None:
        worker = ImportJobRepository(connect())
        try:
            while True:
                job = worker.claim_next(worker_id=name)
                if job is None:
                    # A claim passes over a chunk a mark holds for a moment:
                    # ask again until the import has ended.
                    if (worker.get_by_id(parent.id) or parent).status.is_terminal:
                        return
                    time.sleep(0.001)
                    continue
                try:
                    worker.advance(job.id, processed=10, success=10)
                    worker.update_status(job.id, S.COMPLETED)
                except (ImportJobCancelledError, InvalidStatusTransitionError):
                    assert cancel  # only the cancel ends a chunk under its worker
        except BaseException as exc:  # the test's thread reports to the test
            failed.append(exc)

    def watch() -> None:
        marker = connect()
        try:
            while not stop.is_set():
                _mark(marker, parent.id)
        except BaseException as exc:
            failed.append(exc)

    workers = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(3)]
    watchers = [threading.Thread(target=watch) for _ in range(2)]
    for thread in watchers + workers:
        thread.start()
    if cancel:
        while (repo.get_by_id(parent.id) or parent).processed_rows < 100:
            time.sleep(0.005)
        repo.cancel(parent.id)
    for thread in workers:
        thread.join(timeout=60)
    stop.set()
    for thread in watchers:
        thread.join(timeout=60)
    assert not failed, failed
    ended = repo.get_by_id(parent.id)
    assert ended is not None
    assert ended.status is (S.CANCELLED if cancel else S.COMPLETED)
    assert ended.processed_rows == sum(c.processed_rows for c in repo.children(parent.id))
