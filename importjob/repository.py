"""Store and change import jobs in PostgreSQL, one statement per call."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from importjob import _validate
from importjob._errors import translate_errors
from importjob._queries import query
from importjob.exceptions import (
    DataImportError,
    ImportJobNotFoundError,
    InvalidFieldError,
    InvalidStatusTransitionError,
)
from importjob.models import ImportJob, ImportJobStatus

__all__ = ["ImportJobRepository"]

_Row = dict[str, Any]


class ImportJobRepository:
    """Create, read and change import jobs over one psycopg connection.

    Every method checks its arguments first (bad input raises
    `importjob.exceptions.InvalidFieldError` naming the argument, and nothing
    is sent), then runs exactly one statement from ``sql/`` in one round trip.

    The repository opens no transaction of its own: on an autocommit
    connection each call is durable when it returns; inside the caller's
    ``with conn.transaction():`` the calls join that transaction. On a
    connection that is not in autocommit mode, the caller commits.

    Driver errors come out as `importjob.exceptions.DataImportError`
    subclasses with the driver's exception as ``__cause__``.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """Return the connection the repository runs its statements on."""
        return self._conn

    def create(self, job: ImportJob) -> ImportJob:
        """Store a new job and return it as stored (with ``created_at``).

        The job must be PENDING and not started. Raises
        `ImportJobExistsError` when a job with its id exists already.
        """
        params = create_params(job)
        [row] = self._fetchall("create_job", params)  # INSERT ... RETURNING: one row
        return ImportJob.from_row(row)

    def get_by_id(self, job_id: UUID | str) -> ImportJob | None:
        """Return the job with this id, or None when there is none."""
        row = self._fetchone("get_job", {"id": _validate.job_id(job_id)})
        return None if row is None else ImportJob.from_row(row)

    def update_progress(
        self,
        job_id: UUID | str,
        processed: int,
        success: int,
        errors: int,
        *,
        total: int | None = None,
    ) -> None:
        """Set the job's counters to these absolute values.

        ``total``, when given, sets ``total_rows`` too. Raises
        `ImportJobNotFoundError` when no job has this id.
        """
        params = {
            "id": _validate.job_id(job_id),
            "processed_rows": _validate.count("processed", processed),
            "success_count": _validate.count("success", success),
            "error_count": _validate.count("errors", errors),
            "total_rows": None if total is None else _validate.count("total", total),
        }
        self._write("update_progress", params)

    def update_status(self, job_id: UUID | str, status: ImportJobStatus | str) -> ImportJob:
        """Move the job to ``status`` and return it as changed.

        Entering PROCESSING sets ``started_at``, entering a terminal status
        sets ``completed_at``, both by the database in the same statement.
        Raises `InvalidStatusTransitionError` when the lifecycle forbids the
        change (nothing changes then; of two concurrent transitions only one
        can succeed) and `ImportJobNotFoundError` when no job has this id.
        """
        params = status_params(job_id, status)
        row = self._fetchone("update_status", params)
        return status_result(params, row)

    def add_error(self, job_id: UUID | str, error: Mapping[str, Any] | DataImportError) -> None:
        """Append one error entry to the job's ``errors``.

        ``error`` is a JSON-serializable dict, or an import exception stored
        as its `to_dict()`. The counters do not change: ``error_count`` is
        set through `update_progress`. Raises `ImportJobNotFoundError` when
        no job has this id.
        """
        params = {"id": _validate.job_id(job_id), "error": _dump_error(error)}
        self._write("add_error", params)

    def list_by_status(self, status: ImportJobStatus | str, limit: int = 100) -> list[ImportJob]:
        """Return at most ``limit`` jobs in ``status``, oldest first."""
        params = {
            "status": ImportJobStatus.parse(status).value,
            "limit": _validate.positive("limit", limit),
        }
        return [ImportJob.from_row(row) for row in self._fetchall("list_jobs_by_status", params)]

    # Every statement goes through these three, and so through translate_errors.

    def _fetchone(self, name: str, params: Mapping[str, Any]) -> _Row | None:
        with translate_errors(params), self._conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query(name), params)
            return cur.fetchone()

    def _fetchall(self, name: str, params: Mapping[str, Any]) -> list[_Row]:
        with translate_errors(params), self._conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query(name), params)
            return cur.fetchall()

    def _write(self, name: str, params: Mapping[str, Any]) -> None:
        with translate_errors(params), self._conn.cursor() as cur:
            cur.execute(query(name), params)
            found = cur.rowcount
        if found == 0:
            raise ImportJobNotFoundError(params["id"])


# Parameters and results, shared by every repository built on these statements.


def create_params(job: object) -> dict[str, Any]:
    """Return the parameters of ``create_job`` for a new job, or raise `InvalidFieldError`."""
    if not isinstance(job, ImportJob):
        raise InvalidFieldError("job", "must be an ImportJob", job)
    if job.status is not ImportJobStatus.PENDING:
        raise InvalidFieldError(
            "status", "a new job must be pending (change it with update_status)", job.status
        )
    if job.started_at is not None:
        raise InvalidFieldError("started_at", "a new job has not started", job.started_at)
    return {
        "id": job.id,
        "status": job.status.value,
        "source_type": job.source_type.value,
        "filename": job.filename,
        "total_rows": job.total_rows,
        "processed_rows": job.processed_rows,
        "success_count": job.success_count,
        "error_count": job.error_count,
        "errors": json.dumps(job.errors, ensure_ascii=False),
        "created_at": job.created_at,
    }


def status_params(job_id: object, status: object) -> dict[str, Any]:
    """Return the parameters of ``update_status``, or raise `InvalidFieldError`."""
    target = ImportJobStatus.parse(status)
    return {
        "id": _validate.job_id(job_id),
        "status": target.value,
        "from_statuses": [source.value for source in target.previous_statuses()],
        "starts": target is ImportJobStatus.PROCESSING,
        "terminal": target.is_terminal,
    }


def status_result(params: Mapping[str, Any], row: _Row | None) -> ImportJob:
    """Return the job ``update_status`` changed, or raise why it did not."""
    if row is None:
        raise ImportJobNotFoundError(params["id"])
    if row["id"] is None:
        raise InvalidStatusTransitionError(
            params["id"],
            ImportJobStatus(row["previous_status"]),
            ImportJobStatus(params["status"]),
        )
    return ImportJob.from_row(row)


def _dump_error(error: object) -> str:
    if isinstance(error, DataImportError):
        error = error.to_dict()
    return _validate.dump_error(error)
