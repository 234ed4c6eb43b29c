"""A tracked import in a process of its own, for the browser tests.

``python importer.py URL JOB_ID ROWS GATE``: imports ROWS rows through the
tracker, flushing every 10; after half of them it waits for the file GATE
to exist, so the test sees the bar stand at 50 % before letting it go on.
A job cancelled under it stops it at its next flush: it exits with
`CANCELLED`, as a worker that noticed.
"""

from __future__ import annotations

import os
import sys
import time

import psycopg

from importjob import ImportJobRepository, track
from importjob.exceptions import ImportJobCancelledError, ImportValidationError

CANCELLED = 3


def main(url: str, job_id: str, rows: int, gate: str) -> None:
    """Import ``rows`` rows into the job, pausing at half until ``gate`` exists."""
    with psycopg.connect(url, autocommit=True) as conn:
        repo = ImportJobRepository(conn)
        with track(repo, job_id, every_rows=10, every_seconds=60) as tracker:
            for row in range(1, rows + 1):
                if row % 7 == 0:
                    tracker.failed(ImportValidationError(row, "answer", "must not be empty"))
                else:
                    tracker.ok()
                if row == rows // 2:
                    tracker.flush()
                    while not os.path.exists(gate):
                        time.sleep(0.02)
                elif row % 10 == 0:
                    time.sleep(0.01)  # a row's work, so the page sees steps between


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
    except ImportJobCancelledError:
        sys.exit(CANCELLED)
