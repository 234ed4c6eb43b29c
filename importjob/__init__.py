"""Track long-running imports as job rows in PostgreSQL.

An `ImportJob` records one import: its status in a fixed lifecycle
(`ImportJobStatus`), its counters, its structured errors and its times.
`ImportJobRepository` stores and changes jobs with hand-written SQL over a
psycopg 3 connection; `apply_migrations` builds the table. The exceptions
live in `importjob.exceptions`.
"""

from importjob.models import ImportJob, ImportJobStatus, SourceType
from importjob.repository import ImportJobRepository
from importjob.schema import apply_migrations, rollback_migrations

__all__ = [
    "ImportJob",
    "ImportJobRepository",
    "ImportJobStatus",
    "SourceType",
    "apply_migrations",
    "rollback_migrations",
]
