"""A worker running a chunked import's chunks in a process of its own, for the browser tests.

``python chunk_worker.py URL CHUNKS GATE``: claims and imports CHUNKS
chunks, each chunk's rows through the tracker, flushing every 10; at half
of each chunk it waits for the file GATE to exist, so the test sees the
chunk's bar stand at 50 % before letting it go on.
"""

from __future__ import annotations

import os
import sys
import time

import psycopg

from importjob import ImportJobRepository, track

WORKER = "chunk-worker"


def main(url: str, gate: str, chunks: int) -> None:
    """Run ``chunks`` chunks, pausing at half of each until ``gate`` exists."""
    with psycopg.connect(url, autocommit=True) as conn:
        repo = ImportJobRepository(conn)
        for _ in range(chunks):
            # A page that opens marks its chunks watched, which locks each
            # row for a moment: a claim then passes over it (SKIP LOCKED)
            # and finds none. Ask again, as a worker does at its next wake.
            while (job := repo.claim_next(worker_id=WORKER)) is None:
                time.sleep(0.05)
            rows = job.total_rows or 0
            with track(repo, job.id, worker_id=WORKER, every_rows=10, every_seconds=60) as tracker:
                for row in range(1, rows + 1):
                    tracker.ok()
                    if row == rows // 2:
                        tracker.flush()
                        while not os.path.exists(gate):
                            time.sleep(0.02)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[3], int(sys.argv[2]))
