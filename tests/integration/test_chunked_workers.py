"""A chunked import under real worker processes, one SIGKILLed in every round."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from importjob import Chunk, ImportJob, ImportJobRepository, ImportJobStatus

S = ImportJobStatus
WORKERS = Path(__file__).with_name("workers.py")
PROCESSES = 8
CHUNKS = 64
ROWS = 30
ROUNDS = 20
# Far past a live worker's heartbeat (0.2 s, and every flush): only a killed
# worker's chunk is this stale.
RESCUE_AFTER = timedelta(seconds=3)


class Workers:
    """Worker processes running ``workers.py chunks``, their output gathered line by line."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lines: list[tuple[int, list[str]]] = []  # (pid, words), in arrival order
        self.live: dict[str, subprocess.Popen[str]] = {}  # by worker id
        self.killed: set[int] = set()
        self._readers: list[threading.Thread] = []
        self._seen = threading.Condition()

    def spawn(self) -> None:
        process = subprocess.Popen(
            [sys.executable, str(WORKERS), "chunks", self.url, "0.002"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        reader = threading.Thread(target=self._read, args=(process,), daemon=True)
        reader.start()
        self._readers.append(reader)
        ready = self.wait_for(lambda pid, words: pid == process.pid and words[0] == "ready")
        self.live[ready[1]] = process

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                with self._seen:
                    self.lines.append((process.pid, line.split()))
                    self._seen.notify_all()

    def wait_for(self, wanted: Any, timeout: float = 60) -> list[str]:
        with self._seen:
            found = self._seen.wait_for(
                lambda: next((w for p, w in self.lines if wanted(p, w)), None), timeout
            )
        assert found, "the workers never printed it"
        return found

    def kill(self, worker: str) -> None:
        process = self.live.pop(worker)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self.killed.add(process.pid)

    def stop(self) -> None:
        for worker in list(self.live):
            self.kill(worker)
        for reader in self._readers:
            reader.join(timeout=10)

    def last_claimer(self, chunk_id: Any) -> int:
        return [pid for pid, w in self.lines if w[:2] == ["claimed", str(chunk_id)]][-1]

    def told(self, parent_id: Any) -> list[tuple[int, str]]:
        return [(pid, w[2]) for pid, w in self.lines if w[:2] == ["told", str(parent_id)]]


def _ended_by(conn: psycopg.Connection[Any], parent_id: Any) -> Any:
    row = conn.execute("SELECT ended_by FROM import_job WHERE id = %s", (parent_id,)).fetchone()
    assert row is not None
    return row[0]


def _kill_mid_chunk(
    conn: psycopg.Connection[Any], workers: Workers, parent_id: Any, rng: random.Random
) -> None:
    """Kill a worker in the middle of a chunk it has checkpointed, and start another.

    Tried again when the chunk was done by the time the signal landed.
    """
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "no chunk was ever in progress"
        busy = conn.execute(
            "SELECT id, worker_id FROM import_job WHERE parent_id = %s"
            " AND status = 'processing' AND checkpoint IS NOT NULL",
            (parent_id,),
        ).fetchall()
        doomed = [(chunk, w) for chunk, w in busy if w in workers.live]
        if not doomed:
            time.sleep(0.01)
            continue
        chunk, worker = rng.choice(doomed)
        workers.kill(worker)
        workers.spawn()
        status = conn.execute("SELECT status FROM import_job WHERE id = %s", (chunk,)).fetchone()
        if status == ("processing",):
            return  # killed mid-chunk: left for the rescue


def _rescue_until_ended(repo: ImportJobRepository, parent_id: Any) -> int:
    """Rescue the killed worker's chunk until the import ends; return how many resumed."""
    deadline = time.monotonic() + 120
    resumed = 0
    while (read := repo.get_by_id(parent_id)) is not None and not read.status.is_terminal:
        for job in repo.rescue_stale(RESCUE_AFTER, requeue=True):
            assert job.parent_id == parent_id
            resumed += job.checkpoint is not None
        assert time.monotonic() < deadline, "the import never ended"
        time.sleep(0.1)
    return resumed


def _record_parent_moves(conn: psycopg.Connection[Any]) -> None:
    """Record every move of a parent's status as it commits: the test's own witness."""
    conn.execute("CREATE TABLE parent_move (job_id uuid, status text)")
    conn.execute(
        """CREATE FUNCTION parent_moved() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO parent_move VALUES (NEW.id, NEW.status); RETURN NULL; END $$"""
    )
    conn.execute(
        """CREATE TRIGGER parent_moved AFTER UPDATE ON import_job FOR EACH ROW
           WHEN (NEW.chunks IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status)
           EXECUTE FUNCTION parent_moved()"""
    )


def test_killed_workers_chunks_resume_and_each_import_ends_once_telling_one_worker(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    repo = ImportJobRepository(conn)
    _record_parent_moves(conn)
    rng = random.Random(59)  # noqa: S311 - a reproducible choice, not a secret
    workers = Workers(db_url)
    parents = []
    resumed: dict[Any, int] = {}
    try:
        for _ in range(PROCESSES):
            workers.spawn()
        for number in range(ROUNDS):
            parent, _ = repo.create_chunked(
                ImportJob(source_type="csv", filename=f"round-{number}.csv"),
                [Chunk(ROWS, {"rows": [i * ROWS, (i + 1) * ROWS]}) for i in range(CHUNKS)],
            )
            parents.append(parent)
            _kill_mid_chunk(conn, workers, parent.id, rng)
            resumed[parent.id] = _rescue_until_ended(repo, parent.id)
        # The last round's told line may still be on its way.
        last = parents[-1].id
        if workers.last_claimer(_ended_by(conn, last)) not in workers.killed:
            workers.wait_for(lambda _, words: words[:2] == ["told", str(last)])
    finally:
        workers.stop()

    for parent in parents:
        done = repo.get_by_id(parent.id)
        assert done is not None
        chunks = repo.children(parent.id)
        # Exact sums: every row counted once, through kills and resumes.
        assert done.status is S.COMPLETED
        assert [c.status for c in chunks] == [S.COMPLETED] * CHUNKS
        assert [c.processed_rows for c in chunks] == [ROWS] * CHUNKS
        assert (done.total_rows, done.processed_rows, done.success_count) == (CHUNKS * ROWS,) * 3
        assert done.outcomes == {"created": CHUNKS * 20, "updated": CHUNKS * 10}
        # The killed worker's chunk came back, and went on from its checkpoint.
        assert resumed[parent.id] >= 1
        assert done.errors_logged == sum(c.errors_logged for c in chunks) >= 1
        # One terminal transition.
        moves = conn.execute(
            "SELECT status FROM parent_move WHERE job_id = %s", (parent.id,)
        ).fetchall()
        assert [m for (m,) in moves] == ["processing", "completed"]
        # One worker told: the one whose chunk ended it (unless it was killed
        # since, perhaps before it could say so).
        ended_by = _ended_by(conn, parent.id)
        assert ended_by in {c.id for c in chunks}
        ender = workers.last_claimer(ended_by)
        told = workers.told(parent.id)
        if ender in workers.killed:
            assert told in ([], [(ender, "completed")])
        else:
            assert told == [(ender, "completed")]
