"""Many worker processes on one PostgreSQL: exact counts, single claims, rescue, races."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from importjob import ImportJob, ImportJobRepository, ImportJobStatus

S = ImportJobStatus
WORKERS = Path(__file__).with_name("workers.py")


def _spawn(*args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKERS), *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], timeout: float = 300) -> list[str]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out.splitlines()


def _read_line(stream: IO[str] | None) -> list[str]:
    assert stream is not None
    return stream.readline().split()


def test_eight_processes_advance_one_job_exactly(repo: ImportJobRepository, db_url: str) -> None:
    job = repo.create(ImportJob(source_type="csv", filename="shared.csv"))
    # 20,000 one-row updates of one row from 8 processes at once: a lost
    # update (a read-modify-write anywhere) shows in the totals.
    workers = [_spawn("advance", db_url, str(job.id), "2500") for _ in range(8)]
    for worker in workers:
        assert _finish(worker) == ["done"]
    done = repo.get_by_id(job.id)
    assert done is not None
    assert (done.processed_rows, done.success_count, done.error_count) == (20_000, 18_000, 2_000)
    # 2,000 entries sent, the default bound keeps the first 1,000.
    assert (len(done.errors), done.errors_dropped) == (1_000, 1_000)


def test_eight_workers_claim_each_job_exactly_once(
    repo: ImportJobRepository, conn: psycopg.Connection[Any], db_url: str
) -> None:
    with conn.transaction():
        jobs = {
            repo.create(ImportJob(source_type="json", filename=f"{n}.json")).id for n in range(1000)
        }
    # The gate: all eight start claiming at once, so a worker slow to start
    # on a busy machine does not find the queue emptied already.
    conn.execute("SELECT pg_advisory_lock(59, 0)")
    workers = [_spawn("claim", db_url) for _ in range(8)]
    worker_ids = [_read_line(worker.stdout)[1] for worker in workers]
    while conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    ).fetchone() != (8,):
        time.sleep(0.01)
    conn.execute("SELECT pg_advisory_unlock(59, 0)")
    claims: Counter[str] = Counter()
    claimed_by: dict[str, str] = {}
    for worker, worker_id in zip(workers, worker_ids, strict=True):
        lines = _finish(worker)
        for line in lines:
            job_id = line.split()[1]
            claims[job_id] += 1
            claimed_by[job_id] = worker_id
    assert set(claims) == {str(job_id) for job_id in jobs}
    assert set(claims.values()) == {1}
    assert repo.list_by_status(S.PENDING, limit=10) == []
    for job in repo.list_by_status(S.PROCESSING, limit=1000):
        assert job.worker_id == claimed_by[str(job.id)]
    assert len(set(claimed_by.values())) > 1  # the work was shared


def test_a_killed_worker_is_rescued_and_a_live_one_is_not(
    repo: ImportJobRepository, db_url: str
) -> None:
    doomed = repo.create(ImportJob(source_type="csv", filename="doomed.csv"))
    alive = repo.create(ImportJob(source_type="csv", filename="alive.csv"))
    # Leaving each block closes the worker's pipes and waits for it; closing
    # the live worker's stdin lets it finish its import.
    with _spawn("track", db_url, str(alive.id), "50", "0.2", stdin=subprocess.PIPE) as living:
        with _spawn("track", db_url, str(doomed.id), "50", "0.2", stdin=subprocess.PIPE) as killed:
            try:
                killed_id = _read_line(killed.stdout)[1]
                flushed = [int(_read_line(killed.stdout)[1]) for _ in range(3)]
            finally:
                os.kill(killed.pid, signal.SIGKILL)
            assert flushed == [50, 100, 150]
        at_kill = repo.get_by_id(doomed.id)
        assert at_kill is not None
        assert at_kill.status is S.PROCESSING
        assert at_kill.processed_rows >= 150
        assert at_kill.processed_rows % 50 == 0  # only whole flushes reached the row
        time.sleep(1.5)  # long past the killed worker's last heartbeat
        rescued = repo.rescue_stale(timedelta(seconds=1))
        assert [job.id for job in rescued] == [doomed.id]
        lost = repo.get_by_id(doomed.id)
        assert lost is not None
        assert lost.status is S.FAILED
        assert (lost.processed_rows, lost.success_count) == (at_kill.processed_rows,) * 2
        assert lost.errors[-1]["type"] == "WorkerLostError"
        assert lost.errors[-1]["worker_id"] == killed_id
        still = repo.get_by_id(alive.id)
        assert still is not None
        assert still.status is S.PROCESSING
        assert living.stdin is not None
        living.stdin.close()
        assert living.stdout is not None
        assert living.stdout.read().splitlines()[-1] == "completed"
        assert living.wait(timeout=60) == 0
    finished = repo.get_by_id(alive.id)
    assert finished is not None
    assert finished.status is S.COMPLETED
    assert finished.processed_rows > 0


def test_cancel_against_complete_exactly_one_wins(
    repo: ImportJobRepository,
    conn: psycopg.Connection[Any],
    db_url: str,
    tmp_path: Path,
) -> None:
    rounds = 200
    with conn.transaction():
        jobs = [repo.create(ImportJob(source_type="text", filename="r.txt")) for _ in range(rounds)]
        for job in jobs:
            repo.update_status(job.id, S.PROCESSING)
    ids = tmp_path / "jobs.txt"
    ids.write_text("".join(f"{job.id}\n" for job in jobs))
    gate = psycopg.connect(db_url, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(59, n) FROM generate_series(1, %s) AS n", [rounds])
    racers = {
        status: _spawn("race", db_url, status.value, str(ids))
        for status in (S.CANCELLED, S.COMPLETED)
    }
    try:
        for round_ in range(1, rounds + 1):
            _wait_for_waiters(conn, round_, count=2)
            gate.execute("SELECT pg_advisory_unlock(59, %s)", [round_])
        outcomes = {status: _finish(racer, timeout=120) for status, racer in racers.items()}
    finally:
        gate.close()
        for racer in racers.values():
            if racer.poll() is None:
                racer.kill()
    per_round: dict[int, dict[S, list[str]]] = {}
    for status, lines in outcomes.items():
        for line in lines:
            gate_number, result, *rest = line.split()
            per_round.setdefault(int(gate_number), {})[status] = [result, *rest]
    assert sorted(per_round) == list(range(1, rounds + 1))
    winners: Counter[S] = Counter()
    for round_, results in per_round.items():
        [winner] = [status for status, (result, *_) in results.items() if result == "won"]
        [loser] = [status for status in results if status is not winner]
        # The loser is told the status that beat it.
        assert results[loser] == ["lost", winner.value]
        raced = repo.get_by_id(jobs[round_ - 1].id)
        assert raced is not None
        assert raced.status is winner
        assert raced.completed_at is not None
        winners[winner] += 1
    assert sum(winners.values()) == rounds


def _wait_for_waiters(conn: psycopg.Connection[Any], gate: int, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = 59 AND objid = %s",
            [gate],
        ).fetchone()
        if row and row[0] >= count:
            return
        time.sleep(0.001)
    pytest.fail(f"the racers never both reached gate {gate}")


def test_a_killed_import_resumes_from_its_checkpoint_counting_each_row_once(
    repo: ImportJobRepository, db_url: str, tmp_path: Path
) -> None:
    rows = 2000
    source = tmp_path / "pairs.csv"
    source.write_text(
        "".join(f"q{n},{'bad' if n % 10 == 0 else 'a'}{n}\n" for n in range(1, rows + 1))
    )
    job = repo.create(ImportJob(source_type="csv", filename="pairs.csv", total_rows=rows))
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with _spawn("resume", db_url, str(source), str(first_log), "first") as first:
        assert _read_line(first.stdout) == ["resuming", "0"]
        # Killed mid-file, once some checkpoints are stored.
        while True:
            stored = repo.get_by_id(job.id)
            assert stored is not None
            if stored.checkpoint is not None and stored.checkpoint["row"] >= 300:
                break
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    at_kill = repo.get_by_id(job.id)
    assert at_kill is not None
    assert at_kill.status is S.PROCESSING
    checkpoint = at_kill.checkpoint["row"]
    # The counts agree with the checkpoint: the rows before it, each once.
    assert at_kill.processed_rows == checkpoint
    assert at_kill.error_count == checkpoint // 10
    time.sleep(1.5)  # its heartbeat goes stale
    [rescued] = repo.rescue_stale(timedelta(seconds=1), requeue=True)
    assert (rescued.status, rescued.checkpoint["row"]) == (S.PENDING, checkpoint)
    second = _spawn("resume", db_url, str(source), str(second_log), "second")
    assert _finish(second) == [f"resuming {checkpoint}", "completed"]
    done = repo.get_by_id(job.id)
    assert done is not None
    assert done.status is S.COMPLETED
    assert done.processed_rows == rows
    assert done.success_count + done.error_count == done.processed_rows
    assert done.error_count == rows // 10
    first_rows = [int(n) for n in first_log.read_text().split()]
    second_rows = [int(n) for n in second_log.read_text().split()]
    # No row before the checkpoint was processed twice; the second worker
    # started right after it and went to the end.
    assert first_rows[:checkpoint] == list(range(1, checkpoint + 1))
    assert second_rows == list(range(checkpoint + 1, rows + 1))
    # The first may have processed a few rows past its checkpoint: counted
    # by neither it nor the job until the second did them.
    assert first_rows[checkpoint:] == list(range(checkpoint + 1, len(first_rows) + 1))
    assert done.checkpoint == {"row": rows, "offset": source.stat().st_size}
