"""Track long-running imports as job rows in PostgreSQL.

An `ImportJob` records one import: its status in a fixed lifecycle
(`ImportJobStatus`), its counters, its structured errors and its times.
`ImportJobRepository` (and its asyncio twin `AsyncImportJobRepository`)
stores and changes jobs with hand-written SQL over psycopg 3; `track`
reports a running import into its job; `fingerprint` names the file an
import reads, so it is imported once; `apply_migrations` builds the table.
The exceptions live in `importjob.exceptions`.
"""

from importjob._identity import worker_id
from importjob.models import (
    Chunk,
    ErrorGroup,
    ErrorPage,
    ImportJob,
    ImportJobStatus,
    LoggedError,
    SourceType,
    StatusMetrics,
)
from importjob.repository import ImportJobRepository
from importjob.repository_async import AsyncImportJobRepository
from importjob.schema import apply_migrations, rollback_migrations
from importjob.sources import Fingerprint, fingerprint
from importjob.tracking import AsyncTracker, Tracker, track, track_async
from importjob.worker import Worker, run_worker

__all__ = [
    "AsyncImportJobRepository",
    "AsyncTracker",
    "Chunk",
    "ErrorGroup",
    "ErrorPage",
    "Fingerprint",
    "ImportJob",
    "ImportJobRepository",
    "ImportJobStatus",
    "LoggedError",
    "SourceType",
    "StatusMetrics",
    "Tracker",
    "Worker",
    "apply_migrations",
    "fingerprint",
    "rollback_migrations",
    "run_worker",
    "track",
    "track_async",
    "worker_id",
]
