"""Worker processes for the concurrency tests: ``python workers.py COMMAND URL ...``.

Each command is a small real worker using the installed package against the
database at URL, and reports on stdout, one line per event, so the test in
the parent process can follow it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import psycopg

from importjob import ImportJobRepository, ImportJobStatus, track, worker_id
from importjob.exceptions import ImportJobDatabaseError, InvalidStatusTransitionError


def _repo(url: str) -> ImportJobRepository:
    return ImportJobRepository(psycopg.connect(url, autocommit=True))


def advance(url: str, job_id: str, calls: str) -> None:
    """Add one processed, succeeded row ``calls`` times, every 10th with a failure."""
    repo = _repo(url)
    for call in range(int(calls)):
        if call % 10 == 9:
            repo.advance(job_id, processed=1, errors=1, entries=[{"message": str(call)}])
        else:
            repo.advance(job_id, processed=1, success=1)
    print("done", flush=True)


def claim(url: str) -> None:
    """Wait at the parent's gate, then claim jobs until none is pending; print each id claimed.

    The parent holds advisory lock (59, 0) until every worker waits on it,
    so they all start at once, however long each took to start.
    """
    repo = _repo(url)
    print("worker", worker_id(), flush=True)
    repo.connection.execute("SELECT pg_advisory_lock_shared(59, 0)")
    repo.connection.execute("SELECT pg_advisory_unlock_shared(59, 0)")
    while (job := repo.claim_next()) is not None:
        print("claimed", job.id, flush=True)


def track_slowly(url: str, job_id: str, every_rows: str, heartbeat_seconds: str) -> None:
    """Import rows slowly under a tracker, printing the count after each flush.

    Runs until its stdin closes (or the process is killed), then completes the job.
    """
    repo = _repo(url)
    stdin_closed = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stdin_closed.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    print("worker", worker_id(), flush=True)
    with track(
        repo,
        job_id,
        every_rows=int(every_rows),
        every_seconds=3600,
        heartbeat_seconds=float(heartbeat_seconds),
    ) as tracker:
        while not stdin_closed.is_set():
            tracker.ok()
            if tracker.unflushed == 0:
                print("flushed", tracker.processed_rows, flush=True)
            time.sleep(0.002)
    print("completed", flush=True)


def race(url: str, status: str, ids_file: str) -> None:
    """For round N, wait at the parent's gate N, then try moving the N-th job to ``status``.

    The parent holds advisory lock (59, N) and releases it once both racers
    wait on it, so they hit the job at the same moment.
    """
    repo = _repo(url)
    conn = repo.connection
    with open(ids_file) as ids:
        jobs = [line.strip() for line in ids if line.strip()]
    for gate, job_id in enumerate(jobs, start=1):
        conn.execute("SELECT pg_advisory_lock_shared(59, %s)", [gate])
        conn.execute("SELECT pg_advisory_unlock_shared(59, %s)", [gate])
        try:
            repo.update_status(job_id, ImportJobStatus(status))
        except InvalidStatusTransitionError as lost:
            print(gate, "lost", lost.from_status, flush=True)
        else:
            print(gate, "won", flush=True)


def drive(url: str, job_id: str, steps: str, step_seconds: str) -> None:
    """Take a job through its life slowly: start, ``steps`` advances, complete."""
    repo = _repo(url)
    pause = float(step_seconds)
    time.sleep(pause)
    repo.start(job_id)
    print("started", flush=True)
    for step in range(1, int(steps) + 1):
        time.sleep(pause)
        repo.advance(job_id, processed=100, success=100)
        print("advanced", step * 100, flush=True)
    time.sleep(pause)
    repo.update_status(job_id, ImportJobStatus.COMPLETED)
    print("completed", flush=True)


def steady_import(url: str, job_id: str, rows: str, every_rows: str, attempts: str) -> None:
    """Import ``rows`` rows at 2 ms each under a tracker with ``attempts`` retries.

    Prints the count after each flush; on giving up, prints the error and exits 3.
    """
    repo = _repo(url)
    try:
        with track(
            repo,
            job_id,
            every_rows=int(every_rows),
            every_seconds=3600,
            retry_attempts=int(attempts),
            retry_delay=0.1,
            retry_max_delay=1.0,
        ) as tracker:
            for _ in range(int(rows)):
                time.sleep(0.002)
                tracker.ok()
                if tracker.unflushed == 0:
                    print("flushed", tracker.processed_rows, flush=True)
    except ImportJobDatabaseError as exc:
        print("error", exc, flush=True)
        sys.exit(3)
    print("completed", flush=True)


def resume(url: str, source: str, log: str, name: str) -> None:
    """Claim the pending job and import ``source`` from the job's checkpoint on.

    The resume loop of the README: the checkpoint is the last row done and
    its end's byte offset; each row processed is appended to ``log`` before
    it is counted (a row failing has "bad" in it), so the parent sees which
    rows each worker processed.
    """
    repo = _repo(url)
    job = repo.claim_next(name)
    assert job is not None
    done, offset = (job.checkpoint["row"], job.checkpoint["offset"]) if job.checkpoint else (0, 0)
    print("resuming", done, flush=True)
    with (
        open(source, "rb") as rows,
        open(log, "a") as processed,
        track(repo, job.id, every_rows=25, every_seconds=3600, worker_id=name) as tracker,
    ):
        rows.seek(offset)
        while line := rows.readline():
            done += 1
            processed.write(f"{done}\n")
            processed.flush()
            time.sleep(0.001)  # the embedding
            if b"bad" in line:
                tracker.failed({"row": done, "message": "bad row"})
            else:
                tracker.ok()
            tracker.checkpoint({"row": done, "offset": rows.tell()})
    print("completed", flush=True)


def watch(url: str, job_id: str) -> None:
    """Watch a job, printing its processed rows at each snapshot, until it ends."""
    for job in _repo(url).watch(job_id):
        print("seen", job.processed_rows, flush=True)


def chunks(url: str, row_seconds: str) -> None:
    """Claim chunks forever and import their rows from their checkpoints.

    Prints ``ready WORKER_ID`` first, ``claimed CHUNK`` on each claim and
    ``told PARENT STATUS`` when the end of its chunk ended the chunked
    import. Runs until killed.
    """
    repo = _repo(url)
    pause = float(row_seconds)
    print("ready", worker_id(), flush=True)
    while True:
        job = repo.claim_next()
        if job is None:
            time.sleep(0.02)
            continue
        print("claimed", job.id, flush=True)
        done = job.checkpoint["row"] if job.checkpoint else 0
        with track(repo, job.id, every_rows=5, heartbeat_seconds=0.2) as t:
            for row in range(done, job.total_rows):
                time.sleep(pause)
                t.ok(outcome="created" if row % 3 else "updated")
                t.checkpoint({"row": row + 1})
        if t.ended_import is not None:
            print("told", t.ended_import.id, t.ended_import.status.value, flush=True)


COMMANDS: dict[str, Callable[..., None]] = {
    "import": steady_import,
    "drive": drive,
    "advance": advance,
    "claim": claim,
    "track": track_slowly,
    "race": race,
    "watch": watch,
    "resume": resume,
    "chunks": chunks,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
