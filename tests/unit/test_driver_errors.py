"""Driver errors come out as the project's exceptions, the original kept as the cause."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from importjob import ImportJob, ImportJobRepository, ImportJobStatus
from importjob.exceptions import ImportJobDatabaseError, SchemaMissingError

Connect = Callable[[], psycopg.Connection[Any]]


def test_missing_schema_says_to_migrate(empty_db_url: str) -> None:
    with (
        psycopg.connect(empty_db_url, autocommit=True) as conn,
        pytest.raises(SchemaMissingError, match="apply the migrations") as caught,
    ):
        ImportJobRepository(conn).list_by_status(ImportJobStatus.PENDING, limit=1)
    assert isinstance(caught.value, ImportJobDatabaseError)
    assert isinstance(caught.value.__cause__, psycopg.errors.UndefinedTable)


def test_closed_connection(connect: Connect) -> None:
    conn = connect()
    conn.close()
    with pytest.raises(ImportJobDatabaseError, match="OperationalError") as caught:
        ImportJobRepository(conn).get_by_id("0b7c8f6e-2a54-4e37-9d6e-3c1f5a0e9b21")
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


def test_terminated_backend_leaves_no_partial_write(
    repo: ImportJobRepository, connect: Connect, new_job: ImportJob
) -> None:
    victim = connect()
    victim_repo = ImportJobRepository(victim)
    job = repo.create(new_job)
    repo.connection.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
    with pytest.raises(ImportJobDatabaseError) as caught:
        victim_repo.update_progress(job.id, processed=10, success=10, errors=0)
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    assert repo.get_by_id(job.id) == job  # nothing written
    ImportJobRepository(connect()).update_progress(job.id, processed=10, success=10, errors=0)
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.processed_rows == 10


def test_statement_timeout_is_reported(
    repo: ImportJobRepository, connect: Connect, new_job: ImportJob
) -> None:
    job = repo.create(new_job)
    holder = connect()
    waiter = connect()
    waiter.execute("SET statement_timeout = '100ms'")
    with holder.transaction():
        ImportJobRepository(holder).update_progress(job.id, processed=1, success=1, errors=0)
        with pytest.raises(ImportJobDatabaseError, match="QueryCanceled") as caught:
            ImportJobRepository(waiter).update_progress(job.id, 2, 2, 0)
    assert isinstance(caught.value.__cause__, psycopg.errors.QueryCanceled)
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.processed_rows == 1
