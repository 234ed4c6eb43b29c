"""The handler `importjob demo --chunks K --workers N` runs in its worker processes."""

from __future__ import annotations

import hashlib
import time

from importjob.exceptions import ImportValidationError
from importjob.models import ImportJob
from importjob.tracking import Tracker


def import_rows(job: ImportJob, t: Tracker) -> None:
    """Import a chunk's rows (its spec: ``{"rows": [first, end]}``) from its checkpoint on."""
    first, end = job.chunk["rows"] if job.chunk else (0, job.total_rows)
    fail_every = int(job.metadata.get("fail_every", 0))
    pause = float(job.metadata.get("row_ms", 0)) / 1000
    for row in range(job.checkpoint["row"] if job.checkpoint else first, end):
        # A stand-in for parsing and embedding one question-answer pair.
        hashlib.sha256(f"question {row}: answer {row}".encode()).hexdigest()
        if pause:
            time.sleep(pause)
        if fail_every and (row + 1) % fail_every == 0:
            t.failed(ImportValidationError(row + 1, "answer", "must not be empty", value=""))
        else:
            t.ok()
        t.checkpoint({"row": row + 1})
