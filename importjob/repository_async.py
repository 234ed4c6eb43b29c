"""Store and change import jobs in PostgreSQL over a `psycopg.AsyncConnection`.

`AsyncImportJobRepository` is the asyncio twin of
`importjob.repository.ImportJobRepository`: the same statements, checks,
results and exceptions, as coroutines.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Mapping,
    Sequence,
)
from datetime import timedelta
from typing import Any, BinaryIO
from uuid import UUID

import psycopg

from importjob import _validate
from importjob._errors import translate, translate_errors
from importjob._repository_base import (
    _KEEP,
    _T,
    DEFAULT_ERROR_LOG_LIMIT,
    DEFAULT_MAX_ERRORS,
    DEFAULT_STALE_AFTER,
    Advanced,
    ErrorEntry,
    _advance_query,
    _ExportSink,
    _Params,
    _previous_and_job,
    _reopen_params,
    _RepositoryCore,
    _values,
    repository_cursor,
)
from importjob._watch import AsyncWatch, WatchState
from importjob.exceptions import (
    ImportJobNotFoundError,
    SourceAlreadyImportedError,
)
from importjob.models import (
    Chunk,
    ErrorGroup,
    ErrorPage,
    ImportJob,
    ImportJobStatus,
    StatusMetrics,
    job_as_created,
    job_from_values,
)

__all__ = ["AsyncImportJobRepository"]


class AsyncImportJobRepository(_RepositoryCore):
    """The asyncio twin of `ImportJobRepository`, over a `psycopg.AsyncConnection`.

    Every method of the sync repository, as a coroutine, running the same
    statements with the same checks, results and exceptions.
    """

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        *,
        max_errors: int = DEFAULT_MAX_ERRORS,
        error_log_limit: int | None = DEFAULT_ERROR_LOG_LIMIT,
    ) -> None:
        super().__init__(max_errors=max_errors, error_log_limit=error_log_limit)
        self._conn = conn
        # One cursor for every call, as in the sync twin; the lock keeps a
        # tracker's heartbeat task from reading another task's result.
        self._cursor: psycopg.AsyncCursor[Any] | None = None
        self._lock = asyncio.Lock()
        self._reopen = _reopen_params(conn)

    @property
    def connection(self) -> psycopg.AsyncConnection[Any]:
        """Return the connection the repository runs its statements on."""
        return self._conn

    async def reconnect(self) -> None:
        """Open a new connection to the same database; see `ImportJobRepository.reconnect`."""
        async with self._lock:
            with translate_errors({}):
                conn = await psycopg.AsyncConnection.connect(
                    **self._reopen, autocommit=self._conn.autocommit
                )
            await self._conn.close()
            self._conn, self._cursor = conn, None

    async def ping(self) -> None:
        """Check that the database answers; see `ImportJobRepository.ping`."""
        await self._one("ping", {}, _values)

    async def create(self, job: ImportJob, *, unique_source: bool = False) -> ImportJob:
        """Store a new job and return it as stored. See `ImportJobRepository.create`."""
        name, params = self._create_query(job, unique_source)
        if name == "create":
            [stored] = await self._all(name, params, _values)
            return job_as_created(job, stored)
        created = self._created_result(job, params, await self._one(name, params, _values))
        if created is not None:
            return created
        row = await self._one("source_imported", params, _values)
        if row is None:
            return await self.create(job, unique_source=True)
        raise SourceAlreadyImportedError(params["id"], params["source_sha256"], row[0])

    async def create_chunked(
        self, job: ImportJob, chunks: Sequence[Chunk], *, keep_going: bool = False
    ) -> tuple[ImportJob, list[ImportJob]]:
        """Store a chunked import in one transaction; see `ImportJobRepository.create_chunked`."""
        params = self._chunked_params(job, chunks, keep_going)
        created = await self._all("create_chunked", params, job_from_values)
        return created[0], created[1:]

    async def children(self, job_id: UUID | str) -> list[ImportJob]:
        """Return the chunks of a chunked import in order; see `ImportJobRepository.children`."""
        return await self._all("children", self._id_params(job_id), job_from_values)

    async def ended_import(self, chunk: ImportJob) -> ImportJob | None:
        """Return ``chunk``'s chunked import if this chunk's end ended it; see the sync twin."""
        if chunk.parent_id is None:
            return None
        params = {"id": chunk.id, "parent_id": chunk.parent_id}
        return await self._one("ended_import", params, job_from_values)

    async def get_by_id(self, job_id: UUID | str) -> ImportJob | None:
        """Return the job with this id, or None; see `ImportJobRepository.get_by_id`."""
        return await self._one("get_by_id", self._id_params(job_id), job_from_values)

    async def owners(self, job_ids: Sequence[UUID | str]) -> dict[UUID, str | None]:
        """Return the owner of each job of ``job_ids`` that exists; see the sync twin."""
        return dict(await self._all("owners", self._owners_params(job_ids), _values))

    async def list_by_status(
        self, status: ImportJobStatus | str, limit: int = 100, *, owner: str | None = None
    ) -> list[ImportJob]:
        """Return the oldest jobs in ``status``; see `ImportJobRepository.list_by_status`."""
        name, params = self._list_query(status, limit, owner)
        return await self._all(name, params, job_from_values)

    async def list_recent(
        self,
        status: ImportJobStatus | str | None = None,
        limit: int = 50,
        *,
        with_errors: bool = False,
        owner: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        filename: str | None = None,
    ) -> list[ImportJob]:
        """Return the newest jobs; see `ImportJobRepository.list_recent`."""
        params = self._recent_params(
            status, limit, with_errors, owner=owner, metadata=metadata, filename=filename
        )
        return await self._all("list_recent", params, job_from_values, prepare=False)

    async def update_metadata(self, job_id: UUID | str, metadata: Mapping[str, Any]) -> ImportJob:
        """Replace the job's metadata; see `ImportJobRepository.update_metadata`."""
        params = self._metadata_params(job_id, metadata)
        job = await self._one("update_metadata", params, job_from_values)
        if job is None:
            raise ImportJobNotFoundError(params["id"])
        return job

    async def count_by_status(
        self, *, owner: str | None = None, at_most: int = 10_000
    ) -> dict[ImportJobStatus, int]:
        """Return how many imports each status holds; see `ImportJobRepository.count_by_status`."""
        params = self._counts_params(owner, at_most)
        return self._counts_result(
            await self._all("count_by_status", params, _values, prepare=False)
        )

    async def job_metrics(
        self, stale_after: timedelta = DEFAULT_STALE_AFTER
    ) -> dict[ImportJobStatus, StatusMetrics]:
        """Return what the jobs of each status count; see `ImportJobRepository.job_metrics`."""
        params = self._metrics_params(stale_after)
        return self._metrics_result(await self._all("job_metrics", params, _values))

    async def watch(
        self, job_id: UUID | str, timeout: float | None = None
    ) -> AsyncGenerator[ImportJob, None]:
        """Yield the job each time it changes, until it ends; see `ImportJobRepository.watch`."""
        timeout = _validate.optional_seconds("timeout", timeout)
        with AsyncWatch(self._reopen, _validate.job_id(job_id), timeout) as watch:
            while True:
                job = await watch.next()
                yield job
                if job.is_finished:
                    return

    async def _watch_read(self, state: WatchState) -> ImportJob | None:
        # A follower's read of its job, marking it too when due (the web
        # server's listener): the job when it changed since the last read.
        return state.changed(await self._one(state.statement(), state.params, _values))

    async def update_progress(
        self,
        job_id: UUID | str,
        processed: int,
        success: int,
        errors: int,
        *,
        total: int | None = None,
    ) -> None:
        """Set the job's counters; see `ImportJobRepository.update_progress`."""
        params = self._progress_params(job_id, processed, success, errors, total)
        self._found(params, await self._count("update_progress", params))

    async def advance(
        self,
        job_id: UUID | str,
        processed: int = 0,
        success: int = 0,
        errors: int = 0,
        *,
        entries: Sequence[ErrorEntry] = (),
        entries_dropped: int = 0,
        worker_id: str | None = None,
        batch_id: tuple[str, int] | None = None,
        checkpoint: Any = _KEEP,
        skipped: int = 0,
        outcomes: Mapping[str, int] | None = None,
    ) -> ImportJobStatus:
        """Add to the job's counters; see `ImportJobRepository.advance`."""
        params = self._advance_params(
            job_id,
            processed,
            success,
            errors,
            entries=entries,
            entries_dropped=entries_dropped,
            worker_id=worker_id,
            batch_id=batch_id,
            checkpoint=checkpoint,
            skipped=skipped,
            outcomes=outcomes,
        )
        row = await self._one(_advance_query(params), params, _values)
        return self._advance_result(params, row).status

    async def _flush(self, job_id: UUID, **batch: Any) -> Advanced:
        params = self._advance_params(job_id, **batch)
        row = await self._one(_advance_query(params), params, _values)
        return self._advance_result(params, row)

    async def heartbeat(self, job_id: UUID | str, worker_id: str | None = None) -> ImportJobStatus:
        """Record the worker's heartbeat; see `ImportJobRepository.heartbeat`."""
        params = self._advance_params(job_id, worker_id=_validate.worker_or_current(worker_id))
        row = await self._one(_advance_query(params), params, _values)
        return self._advance_result(params, row).status

    async def update_status(self, job_id: UUID | str, status: ImportJobStatus | str) -> ImportJob:
        """Move the job to ``status``; see `ImportJobRepository.update_status`."""
        params = self._status_params(job_id, status)
        while (job := await self._one("update_status", params, job_from_values)) is None:
            self._status_refused(params, await self._one("status_of", params, _values))
        return job

    async def cancel(self, job_id: UUID | str) -> ImportJob:
        """Cancel the job (`update_status` to CANCELLED) and return it.

        Its worker learns of it at its next flush. A chunked import is
        cancelled by cancelling its chunks not ended, in one statement: the
        last of them ends the parent, CANCELLED.
        """
        if await self._count("cancel_chunks", self._id_params(job_id)):
            job = await self.get_by_id(job_id)
            if job is not None:
                return job
        return await self.update_status(job_id, ImportJobStatus.CANCELLED)

    async def add_error(self, job_id: UUID | str, error: ErrorEntry) -> None:
        """Append one error entry; see `ImportJobRepository.add_error`."""
        params = self._error_params(job_id, error)
        self._found(params, await self._count("add_error", params))

    async def add_errors(self, job_id: UUID | str, errors: Sequence[ErrorEntry]) -> None:
        """Append a batch of error entries; see `ImportJobRepository.add_errors`."""
        # A flush that counts nothing: advance_entries records the entries.
        params = self._advance_params(job_id, entries=errors, entries_field="errors")
        self._found(params, await self._count("advance_entries", params))

    async def claim_next(self, worker_id: str | None = None) -> ImportJob | None:
        """Take the PENDING job whose turn it is; see `ImportJobRepository.claim_next`."""
        return await self._one("claim_next", self._worker_params(worker_id), job_from_values)

    async def start(self, job_id: UUID | str, worker_id: str | None = None) -> ImportJob:
        """Make a worker the job's worker; see `ImportJobRepository.start`."""
        params = self._start_params(job_id, worker_id)
        return self._start_result(params, await self._one("start", params, _previous_and_job))

    async def rescue_stale(self, older_than: timedelta, requeue: bool = False) -> list[ImportJob]:
        """End the jobs of lost workers; see `ImportJobRepository.rescue_stale`."""
        return await self._all(
            "rescue_stale", self._rescue_params(older_than, requeue), job_from_values
        )

    async def release(self, job_id: UUID | str, worker_id: str) -> ImportJob | None:
        """Hand a job back to PENDING; see `ImportJobRepository.release`."""
        return await self._one("release", self._release_params(job_id, worker_id), job_from_values)

    async def purge_finished(self, older_than: timedelta, batch: int = 1000) -> int:
        """Delete old ended jobs in batches; see `ImportJobRepository.purge_finished`."""
        params = self._purge_params(older_than, batch)
        purged = 0
        while True:
            deleted, more = self._purge_result(await self._one("purge_finished", params, _values))
            purged += deleted
            if not more:
                return purged

    async def error_summary(self, job_id: UUID | str, limit: int = 20) -> list[ErrorGroup]:
        """Return the job's most common error reasons; see `ImportJobRepository.error_summary`."""
        params = self._summary_params(job_id, limit)
        return self._summary_result(params, await self._all("error_summary", params, _values))

    async def error_page(
        self, job_id: UUID | str, *, after: int = 0, limit: int = 100
    ) -> ErrorPage:
        """Return one page of the job's error log; see `ImportJobRepository.error_page`."""
        params = self._error_page_params(job_id, after, limit)
        return self._error_page_result(params, await self._all("error_page", params, _values))

    def iter_errors(
        self, job_id: UUID | str, *, batch: int = 1000
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every entry of the job's error log; see `ImportJobRepository.iter_errors`."""
        params = self._error_page_params(job_id, 0, batch, "batch")
        return self._pages(params["id"], params["batch"])

    async def _pages(self, job_id: UUID, batch: int) -> AsyncIterator[dict[str, Any]]:
        after: int | None = 0
        while after is not None:
            page = await self.error_page(job_id, after=after, limit=batch)
            for _, entry in page.entries:
                yield entry
            after = page.next_after

    async def export_errors(
        self,
        job_id: UUID | str,
        out: BinaryIO,
        *,
        format: str = "csv",
    ) -> int:
        """Write the job's error log to ``out``; see `ImportJobRepository.export_errors`."""
        name, params, sink = self._export_query(job_id, out, format)
        rows = await self._copy(name, params, sink)
        if rows == 0:
            job = await self._one("get_by_id", params, job_from_values)
            if (again := self._export_again(name, params, job, sink)) is not None:
                rows = await self._copy(again, params, sink)
        sink.close()
        return rows

    async def _one(self, name: str, params: _Params, build: Callable[[Any], _T]) -> _T | None:
        await self._lock.acquire()
        try:
            cursor = await (self._cursor or self._new_cursor()).execute(self._sql[name], params)
            row = await cursor.fetchone()
        except psycopg.Error as exc:
            raise translate(exc, params) from exc
        finally:
            self._lock.release()
        return None if row is None else build(row)

    async def _all(
        self, name: str, params: _Params, build: Callable[[Any], _T], *, prepare: bool | None = None
    ) -> list[_T]:
        await self._lock.acquire()
        try:
            cursor = await (self._cursor or self._new_cursor()).execute(
                self._sql[name], params, prepare=prepare
            )
            rows = await cursor.fetchall()
        except psycopg.Error as exc:
            raise translate(exc, params) from exc
        finally:
            self._lock.release()
        return [build(row) for row in rows]

    async def _count(self, name: str, params: _Params) -> int:
        await self._lock.acquire()
        try:
            cursor = await (self._cursor or self._new_cursor()).execute(self._sql[name], params)
            return cursor.rowcount
        except psycopg.Error as exc:
            raise translate(exc, params) from exc
        finally:
            self._lock.release()

    async def _copy(self, name: str, params: _Params, sink: _ExportSink) -> int:
        # A COPY ... TO STDOUT into sink; the rows it copied, from its command tag.
        await self._lock.acquire()
        try:
            cursor = self._cursor or self._new_cursor()
            async with cursor.copy(self._sql[name], params) as copy:
                async for data in copy:
                    sink.write(data)
            return cursor.rowcount
        except psycopg.Error as exc:
            raise translate(exc, params) from exc
        finally:
            self._lock.release()

    def _new_cursor(self) -> psycopg.AsyncCursor[Any]:
        # Made at the first call, in binary, as in the sync twin.
        self._cursor = repository_cursor(self._conn.cursor(binary=True))
        return self._cursor
