"""Driver errors come out as the project's exceptions, the original kept as the cause."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from importjob import ImportJob, ImportJobRepository, ImportJobStatus
from importjob.exceptions import (
    ImportJobDatabaseError,
    ImportJobTimeoutError,
    InvalidFieldError,
    SchemaMissingError,
)

Connect = Callable[[], psycopg.Connection[Any]]


def test_missing_schema_says_to_migrate(empty_db_url: str) -> None:
    with (
        psycopg.connect(empty_db_url, autocommit=True) as conn,
        pytest.raises(SchemaMissingError, match="apply the migrations") as caught,
    ):
        ImportJobRepository(conn).list_by_status(ImportJobStatus.PENDING, limit=1)
    assert isinstance(caught.value, ImportJobDatabaseError)
    assert isinstance(caught.value.__cause__, psycopg.errors.UndefinedTable)
    # The relation a list reads first: the view over import_job.
    assert str(caught.value).startswith('relation "import_job_summed" does not exist')


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
        with pytest.raises(ImportJobTimeoutError, match="statement timeout") as caught:
            ImportJobRepository(waiter).update_progress(job.id, 2, 2, 0)
    assert isinstance(caught.value, ImportJobDatabaseError)
    assert isinstance(caught.value.__cause__, psycopg.errors.QueryCanceled)
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.processed_rows == 1


def test_lock_timeout_is_reported(
    repo: ImportJobRepository, connect: Connect, new_job: ImportJob
) -> None:
    job = repo.create(new_job)
    holder = connect()
    waiter = connect()
    waiter.execute("SET lock_timeout = '100ms'")
    with holder.transaction():
        ImportJobRepository(holder).start(job.id)
        with pytest.raises(ImportJobTimeoutError, match="lock timeout") as caught:
            ImportJobRepository(waiter).cancel(job.id)
    assert isinstance(caught.value.__cause__, psycopg.errors.LockNotAvailable)
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.status is ImportJobStatus.PROCESSING


def test_a_backend_terminated_mid_call(
    repo: ImportJobRepository,
    connect: Connect,
    lock_waiters: Callable[..., None],
    new_job: ImportJob,
) -> None:
    job = repo.create(new_job)
    holder = connect()
    victim = connect()
    outcome: list[BaseException] = []

    def blocked_call() -> None:
        try:
            ImportJobRepository(victim).advance(job.id, processed=5, success=5)
        except ImportJobDatabaseError as exc:
            outcome.append(exc)

    with holder.transaction():
        # The victim's statement waits for this lock: terminate it while it waits.
        ImportJobRepository(holder).heartbeat(job.id)
        caller = threading.Thread(target=blocked_call)
        caller.start()
        lock_waiters(pid=victim.info.backend_pid)
        repo.connection.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
        caller.join(timeout=10)
    [error] = outcome
    assert isinstance(error.__cause__, psycopg.OperationalError)
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.processed_rows == 0  # no partial write
    ImportJobRepository(connect()).advance(job.id, processed=5, success=5)
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.processed_rows == 5


def test_a_counter_past_64_bits_is_refused_and_nothing_changes(
    repo: ImportJobRepository, new_job: ImportJob
) -> None:
    job = repo.create(new_job)
    repo.advance(job.id, processed=2**63 - 2)
    with pytest.raises(InvalidFieldError, match="counters") as caught:
        repo.advance(job.id, processed=5)
    assert isinstance(caught.value.__cause__, psycopg.errors.NumericValueOutOfRange)
    stored = repo.get_by_id(job.id)
    assert stored is not None
    assert stored.processed_rows == 2**63 - 2


def test_reconnect_replaces_a_dropped_connection(
    repo: ImportJobRepository, connect: Connect, new_job: ImportJob
) -> None:
    own = ImportJobRepository(connect())
    job = own.create(new_job)
    old = own.connection
    repo.connection.execute("SELECT pg_terminate_backend(%s)", [old.info.backend_pid])
    with pytest.raises(ImportJobDatabaseError):
        own.get_by_id(job.id)
    own.reconnect()
    assert own.connection is not old
    assert old.closed
    assert own.connection.autocommit
    assert own.get_by_id(job.id) == job
    own.connection.close()  # the repository's own now, not the fixture's
