"""Store and change import jobs in PostgreSQL over a `psycopg.Connection`.

`ImportJobRepository` runs one statement from ``sql/`` per call; its
asyncio twin is `importjob.repository_async.AsyncImportJobRepository`. Both
take every call's parameters and results from
``importjob._repository_base``.
"""

from __future__ import annotations

import threading
from collections.abc import (
    Callable,
    Generator,
    Iterator,
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
    EXPORT_FORMATS,
    MAX_ERROR_GROUPS,
    MAX_OUTCOME_LABELS,
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
from importjob._watch import Watch, WatchState
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

__all__ = [
    "DEFAULT_ERROR_LOG_LIMIT",
    "DEFAULT_MAX_ERRORS",
    "DEFAULT_STALE_AFTER",
    "EXPORT_FORMATS",
    "MAX_ERROR_GROUPS",
    "MAX_OUTCOME_LABELS",
    "ImportJobRepository",
]


class ImportJobRepository(_RepositoryCore):
    """Create, read and change import jobs over one psycopg connection.

    Every method checks its arguments first (bad input raises
    `importjob.exceptions.InvalidFieldError` naming the argument, and nothing
    is sent), then runs exactly one statement from ``sql/`` in one round trip
    (`purge_finished` runs one per batch).

    The repository opens no transaction of its own: on an autocommit
    connection each call is durable when it returns; inside the caller's
    ``with conn.transaction():`` the calls join that transaction. On a
    connection that is not in autocommit mode, the caller commits.

    Every error entry a job records is a row of its error log (up to
    ``error_log_limit`` entries per job, default 1,000,000; None for no
    limit), counted by its reason (`error_summary`); the job's ``errors``
    repeats the first ones, up to ``max_errors`` in all with the entries
    given at create (``errors_dropped`` counts those it did not take). Read
    the log with `iter_errors`, or write it to a file with `export_errors`.

    Driver errors come out as `importjob.exceptions.DataImportError`
    subclasses with the driver's exception as ``__cause__``.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        max_errors: int = DEFAULT_MAX_ERRORS,
        error_log_limit: int | None = DEFAULT_ERROR_LOG_LIMIT,
    ) -> None:
        super().__init__(max_errors=max_errors, error_log_limit=error_log_limit)
        self._conn = conn
        # One cursor serves every call: making a cursor costs more than the
        # rest of a call. The lock keeps a tracker's heartbeat thread from
        # reading the result of another thread's statement.
        self._cursor: psycopg.Cursor[Any] | None = None
        self._lock = threading.Lock()
        self._reopen = _reopen_params(conn)

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """Return the connection the repository runs its statements on."""
        return self._conn

    def reconnect(self) -> None:
        """Open a new connection to the same database and use it from now on.

        For a connection the server dropped (a restart, a failover): the new
        one has the old one's parameters and autocommit setting, and the old
        one is closed. Raises `ImportJobDatabaseError` when the database
        cannot be reached.
        """
        with self._lock:
            with translate_errors({}):
                conn = psycopg.connect(**self._reopen, autocommit=self._conn.autocommit)
            self._conn.close()
            self._conn, self._cursor = conn, None

    def ping(self) -> None:
        """Check that the database answers and holds the jobs' table; return None.

        One statement that reads at most one row. Raises
        `SchemaMissingError` when the migrations were not applied and
        `ImportJobDatabaseError` when the database cannot be reached.
        """
        self._one("ping", {}, _values)

    def create(self, job: ImportJob, *, unique_source: bool = False) -> ImportJob:
        """Store a new job and return it as stored (with ``created_at``).

        The job must be PENDING and not started. Raises
        `ImportJobExistsError` when a job with its id exists already.

        With ``unique_source=True`` the job's file is imported once: raises
        `SourceAlreadyImportedError` (storing nothing) when a job of the
        same ``owner`` (jobs without one are one owner of their own) with
        the same ``source_sha256`` is pending, processing or completed: two
        owners may each import the same file. The database enforces it: of
        two concurrent creates of one file by one owner, exactly one
        succeeds. A failed or cancelled import does not count.
        """
        name, params = self._create_query(job, unique_source)
        if name == "create":
            [stored] = self._all(name, params, _values)
            return job_as_created(job, stored)
        created = self._created_result(job, params, self._one(name, params, _values))
        if created is not None:
            return created
        # Stopped by the index: the job that did so committed after this
        # statement's snapshot. Read it now; gone already (it failed): again.
        row = self._one("source_imported", params, _values)
        if row is None:
            return self.create(job, unique_source=True)
        raise SourceAlreadyImportedError(params["id"], params["source_sha256"], row[0])

    def create_chunked(
        self, job: ImportJob, chunks: Sequence[Chunk], *, keep_going: bool = False
    ) -> tuple[ImportJob, list[ImportJob]]:
        """Store a chunked import, ``job`` as the parent and one job per chunk, in one transaction.

        Returns ``(parent, children)``, the chunks in order. A chunk takes
        the parent's source type, filename, owner and metadata; the parent's
        ``total_rows`` is the sum of the chunks'. Workers claim the chunks,
        never the parent, whose counts read as the sums of its chunks' and
        whose status follows theirs: processing once one starts; failed as
        soon as one fails, its chunks not started then cancelled (with
        ``keep_going=True``: once all ended); otherwise, with its last
        chunk, completed, or cancelled if one was. Raises
        `ImportJobExistsError` when a job with the parent's id exists.
        """
        params = self._chunked_params(job, chunks, keep_going)
        created = self._all("create_chunked", params, job_from_values)
        return created[0], created[1:]

    def children(self, job_id: UUID | str) -> list[ImportJob]:
        """Return the chunks of a chunked import in order, with their progress (none for a job)."""
        return self._all("children", self._id_params(job_id), job_from_values)

    def ended_import(self, chunk: ImportJob) -> ImportJob | None:
        """Return ``chunk``'s chunked import if the end of this chunk ended it, else None.

        Of a parent's chunks exactly one ended it (the transaction that
        ended that chunk ended the parent): this is how its worker is told.
        """
        if chunk.parent_id is None:
            return None
        params = {"id": chunk.id, "parent_id": chunk.parent_id}
        return self._one("ended_import", params, job_from_values)

    def get_by_id(self, job_id: UUID | str) -> ImportJob | None:
        """Return the job with this id, or None when there is none."""
        return self._one("get_by_id", self._id_params(job_id), job_from_values)

    def owners(self, job_ids: Sequence[UUID | str]) -> dict[UUID, str | None]:
        """Return the owner of each job of ``job_ids`` that exists (None: it has no owner).

        One read through the primary key, of no other column: what a caller
        deciding who may see a job needs before it reads the job. An id
        without a job is left out. Raises `InvalidFieldError` for an id that
        is not a UUID.
        """
        return dict(self._all("owners", self._owners_params(job_ids), _values))

    def list_by_status(
        self, status: ImportJobStatus | str, limit: int = 100, *, owner: str | None = None
    ) -> list[ImportJob]:
        """Return at most ``limit`` jobs in ``status``, oldest first, of ``owner`` when given."""
        name, params = self._list_query(status, limit, owner)
        return self._all(name, params, job_from_values)

    def list_recent(
        self,
        status: ImportJobStatus | str | None = None,
        limit: int = 50,
        *,
        with_errors: bool = False,
        owner: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        filename: str | None = None,
    ) -> list[ImportJob]:
        """Return at most ``limit`` jobs, newest first, filtered by what is given.

        ``status``: in that status; ``owner``: of that owner; ``metadata``:
        whose metadata contains those keys and values (JSON containment:
        ``{"dataset": "faq"}`` matches ``{"dataset": "faq", "upload": 7}``);
        ``filename``: whose file name contains that text, in any case
        (``"faq"`` matches ``"FAQ-2026.csv"``). Status, owner and metadata
        are served by an index; the file name is checked on the jobs they
        yield, newest first, so a name that few of many jobs hold reads
        many rows: give it with an owner when the table is large.

        A list shows progress: the jobs come without their error entries
        (``errors`` empty; ``error_count``, ``errors_dropped`` and
        ``errors_logged`` tell how many there are), which are not even read,
        unless ``with_errors=True``. `get_by_id` reads one job whole.
        """
        params = self._recent_params(
            status, limit, with_errors, owner=owner, metadata=metadata, filename=filename
        )
        return self._all("list_recent", params, job_from_values, prepare=False)

    def update_metadata(self, job_id: UUID | str, metadata: Mapping[str, Any]) -> ImportJob:
        """Replace the job's metadata with ``metadata`` and return the job.

        Any status: the metadata is the application's. Raises
        `ImportJobNotFoundError` when no job has this id.
        """
        params = self._metadata_params(job_id, metadata)
        job = self._one("update_metadata", params, job_from_values)
        if job is None:
            raise ImportJobNotFoundError(params["id"])
        return job

    def count_by_status(
        self, *, owner: str | None = None, at_most: int = 10_000
    ) -> dict[ImportJobStatus, int]:
        """Return how many imports each status holds, counted up to ``at_most``.

        Of ``owner``'s jobs, or of every owner's when it is None. A chunked
        import counts once, in its own status (its chunks are not counted).
        Every status is a key. A count of ``at_most`` means that many or
        more: each status is counted that far and no further, so the cost
        is bounded at any number of jobs (what a dashboard shows as
        "10,000+"); `job_metrics` counts every job exactly, for monitoring.
        """
        params = self._counts_params(owner, at_most)
        return self._counts_result(self._all("count_by_status", params, _values, prepare=False))

    def job_metrics(
        self, stale_after: timedelta = DEFAULT_STALE_AFTER
    ) -> dict[ImportJobStatus, StatusMetrics]:
        """Return what the jobs of each status count: jobs, rows, the oldest, the stalled.

        Every status is a key, with zero jobs when none is in it. Each
        `StatusMetrics` counts the status's jobs, sums their processed and
        failed rows, gives the age of the oldest, and counts the live jobs
        that show no life (no heartbeat, else no start) for ``stale_after``.
        One statement, which reads no ended job: the ended ones are counted
        as they end (``import_job_ended_count``), and it folds the ends since
        the last call into those counts, so run it outside a long
        transaction, where it would hold them.
        """
        params = self._metrics_params(stale_after)
        return self._metrics_result(self._all("job_metrics", params, _values))

    def watch(
        self, job_id: UUID | str, timeout: float | None = None
    ) -> Generator[ImportJob, None, None]:
        """Yield a snapshot of the job now and each time it changes, until it ends.

        Rides on LISTEN/NOTIFY over one connection that every watch of the
        process on this database shares (sync and async), opened with the
        repository connection's parameters by a thread of its own, closed
        once no watch is left. The job is marked watched while the iterator
        runs (only watched jobs notify), and read at least
        every 5 s besides, so no change is missed; the mark lapses within
        30 s of the last watcher leaving. A burst of changes yields one
        snapshot. Snapshots show progress: they come without the job's
        error entries (``errors`` empty; the counts are there), which are
        not read. When the connection is cut, it reconnects, marks,
        re-reads and goes on (giving up after about 15 s with
        `ImportJobDatabaseError`). Raises `ImportJobNotFoundError` when the
        job does not exist (or is deleted) and `TimeoutError` when
        ``timeout`` seconds pass without a change after the first snapshot.
        """
        timeout = _validate.optional_seconds("timeout", timeout)
        with Watch(self._reopen, _validate.job_id(job_id), timeout) as watch:
            while True:
                job = watch.next()
                yield job
                if job.is_finished:
                    return

    def _watch_read(self, state: WatchState) -> ImportJob | None:
        # A follower's read of its job, marking it too when due (the web
        # server's listener): the job when it changed since the last read.
        return state.changed(self._one(state.statement(), state.params, _values))

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
        `ImportJobNotFoundError` when no job has this id. Workers that share
        a job add to its counters with `advance` instead.
        """
        params = self._progress_params(job_id, processed, success, errors, total)
        self._found(params, self._count("update_progress", params))

    def advance(
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
        """Add to the job's counters, append error ``entries``, and return its status.

        The addition happens in SQL, so any number of workers can advance one
        job at once and no count is lost. Entries past the bound are counted
        in ``errors_dropped``, and so are ``entries_dropped`` entries the
        caller already left out. With ``worker_id``, a processing job records
        that worker and its heartbeat. Counts are added whatever the status:
        the returned status tells a worker whether to go on.

        ``batch_id`` makes the call safe to repeat: a ``(key, number)`` pair,
        the key unique to one writer (a tracker uses a random one), the number
        growing with each batch. The job applies a key's batches only in
        increasing number, so a batch sent again after its reply was lost
        adds nothing, and the status is returned all the same. The job keeps
        one number per key (~40 bytes) for as long as it exists.

        ``checkpoint``, when given, is stored in the same statement as the
        counts (None clears it): where the worker got to, any JSON value of
        at most 8 KiB, with the rows before it counted. Left out, the job
        keeps its checkpoint.

        ``skipped`` counts rows deliberately not imported (a duplicate; no
        failure), part of ``processed``. ``outcomes`` adds rows per label of
        the application's (``{"created": 40, "updated": 2}``), imported and
        skipped alike: a label is 1 to 64 characters; a job counts at most
        `MAX_OUTCOME_LABELS` of them, the rows of any further label under
        ``"other"``.
        """
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
        row = self._one(_advance_query(params), params, _values)
        return self._advance_result(params, row).status

    def _flush(self, job_id: UUID, **batch: Any) -> Advanced:
        # A tracker's flush: advance, reading back the counts for its error budget.
        params = self._advance_params(job_id, **batch)
        row = self._one(_advance_query(params), params, _values)
        return self._advance_result(params, row)

    def heartbeat(self, job_id: UUID | str, worker_id: str | None = None) -> ImportJobStatus:
        """Record that ``worker_id`` (default: this process) still runs the job; return its status.

        Only a processing job records it.
        """
        params = self._advance_params(job_id, worker_id=_validate.worker_or_current(worker_id))
        row = self._one(_advance_query(params), params, _values)
        return self._advance_result(params, row).status

    def update_status(self, job_id: UUID | str, status: ImportJobStatus | str) -> ImportJob:
        """Move the job to ``status`` and return it as changed.

        Entering PROCESSING sets ``started_at`` (and ``heartbeat_at``),
        entering a terminal status sets ``completed_at``, both by the
        database in the same statement. Raises `InvalidStatusTransitionError`
        when the lifecycle forbids the change (nothing changes then; of two
        concurrent transitions only one can succeed) and
        `ImportJobNotFoundError` when no job has this id.
        """
        params = self._status_params(job_id, status)
        while (job := self._one("update_status", params, job_from_values)) is None:
            self._status_refused(params, self._one("status_of", params, _values))
        return job

    def cancel(self, job_id: UUID | str) -> ImportJob:
        """Cancel the job (`update_status` to CANCELLED) and return it.

        Its worker learns of it at its next flush. A chunked import is
        cancelled by cancelling its chunks not ended, in one statement: the
        last of them ends the parent, CANCELLED.
        """
        if self._count("cancel_chunks", self._id_params(job_id)):
            job = self.get_by_id(job_id)
            if job is not None:
                return job
        return self.update_status(job_id, ImportJobStatus.CANCELLED)

    def add_error(self, job_id: UUID | str, error: ErrorEntry) -> None:
        """Append one error entry to the job's ``errors`` (within the bound).

        ``error`` is a JSON-serializable dict, or an import exception stored
        as its `to_dict()`. The counters do not change: ``error_count`` is
        set through `update_progress` or `advance`. Raises
        `ImportJobNotFoundError` when no job has this id.

        The entry is recorded as every entry is: in the job's error log
        (within ``error_log_limit``), in ``errors`` while it has room, and
        counted by its reason, in one statement.
        """
        params = self._error_params(job_id, error)
        self._found(params, self._count("add_error", params))

    def add_errors(self, job_id: UUID | str, errors: Sequence[ErrorEntry]) -> None:
        """Append a batch of error entries in one statement, like `add_error`."""
        # A flush that counts nothing: advance_entries records the entries.
        params = self._advance_params(job_id, entries=errors, entries_field="errors")
        self._found(params, self._count("advance_entries", params))

    def claim_next(self, worker_id: str | None = None) -> ImportJob | None:
        """Take the PENDING job whose turn it is, for ``worker_id`` (default: this process).

        Claims go round the owners: each owner's jobs wait in rounds, one
        job a round, and the claim takes the lowest round's oldest job, so
        one owner's backlog never holds another's job back by more than a
        claim (jobs without an owner are one owner of their own). With one
        owner, that is the oldest job. The job becomes PROCESSING in the
        same statement; concurrent workers never get the same job. Returns
        None when no job is pending.
        """
        return self._one("claim_next", self._worker_params(worker_id), job_from_values)

    def start(self, job_id: UUID | str, worker_id: str | None = None) -> ImportJob:
        """Make ``worker_id`` (default: this process) the worker of a job and return it.

        A PENDING job becomes PROCESSING; a PROCESSING one changes hands.
        Raises `ImportJobCancelledError` when the job was cancelled,
        `InvalidStatusTransitionError` when it ended otherwise.
        """
        params = self._start_params(job_id, worker_id)
        return self._start_result(params, self._one("start", params, _previous_and_job))

    def rescue_stale(self, older_than: timedelta, requeue: bool = False) -> list[ImportJob]:
        """End the PROCESSING jobs whose last heartbeat is older than ``older_than``.

        They become FAILED, or PENDING again with ``requeue=True`` (for
        `claim_next`), each with a ``WorkerLostError`` entry; their counters
        stay as last flushed. A job whose worker is alive is never touched.
        Returns the rescued jobs.
        """
        return self._all("rescue_stale", self._rescue_params(older_than, requeue), job_from_values)

    def release(self, job_id: UUID | str, worker_id: str) -> ImportJob | None:
        """Hand a PROCESSING job of ``worker_id`` back to PENDING, to be claimed and resumed.

        For a worker that stops before the job ends: counts, checkpoint and
        error entries stay as last flushed. Returns the job, or None when no
        PROCESSING job of this worker has this id (it ended, or was rescued
        and claimed by another worker).
        """
        return self._one("release", self._release_params(job_id, worker_id), job_from_values)

    def purge_finished(self, older_than: timedelta, batch: int = 1000) -> int:
        """Delete the ended jobs that completed before ``older_than`` ago; return how many.

        Deletes in batches of at most ``batch`` rows, one statement each;
        never a PENDING or PROCESSING job.
        """
        params = self._purge_params(older_than, batch)
        purged = 0
        while True:
            deleted, more = self._purge_result(self._one("purge_finished", params, _values))
            purged += deleted
            if not more:
                return purged

    def error_summary(self, job_id: UUID | str, limit: int = 20) -> list[ErrorGroup]:
        """Return the job's most common error reasons, largest count first.

        Each `ErrorGroup` counts the entries of one ``type``, ``field`` and
        ``message``, exactly, over every entry recorded for the job (those
        past ``max_errors`` and ``error_log_limit`` included); at most
        ``limit`` groups. Reads the job's groups, not its log. Raises
        `ImportJobNotFoundError` when no job has this id.
        """
        params = self._summary_params(job_id, limit)
        return self._summary_result(params, self._all("error_summary", params, _values))

    def error_page(self, job_id: UUID | str, *, after: int = 0, limit: int = 100) -> ErrorPage:
        """Return one page of the job's error log: up to ``limit`` entries numbered past ``after``.

        Entries are numbered from 1 in recording order, so ``after=0`` reads
        from the first and the page's ``next_after`` reads the next page
        (None once the log ends). One statement, through the log's key: any
        page of a log of any size costs the same. Raises
        `ImportJobNotFoundError` when no job has this id.
        """
        params = self._error_page_params(job_id, after, limit)
        return self._error_page_result(params, self._all("error_page", params, _values))

    def iter_errors(self, job_id: UUID | str, *, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Yield every entry of the job's error log, in recording order.

        Reads ``batch`` entries at a time, one `error_page` each, so memory
        stays constant for any log size. Arguments are checked now;
        `ImportJobNotFoundError` (no job has this id) is raised when
        iterating.
        """
        params = self._error_page_params(job_id, 0, batch, "batch")
        return self._pages(params["id"], params["batch"])

    def _pages(self, job_id: UUID, batch: int) -> Iterator[dict[str, Any]]:
        after: int | None = 0
        while after is not None:
            page = self.error_page(job_id, after=after, limit=batch)
            for _, entry in page.entries:
                yield entry
            after = page.next_after

    def export_errors(
        self,
        job_id: UUID | str,
        out: BinaryIO,
        *,
        format: str = "csv",
    ) -> int:
        """Write every entry of the job's error log to ``out``; return how many.

        ``out`` is a binary file object open for writing. ``format="csv"``: a
        header, then one line per entry with the columns ``n`` (recording
        order, from 1), ``type``, ``row``, ``line_number``, ``field``,
        ``message``, ``value`` and ``entry`` (the whole entry as JSON);
        ``format="jsonl"``: one entry, as a JSON object, per line. Streamed by
        PostgreSQL's ``COPY ... TO STDOUT`` in one statement and handed to
        ``out`` in 64 KiB chunks: constant memory. A chunked import's export
        holds the entries of every chunk, in chunk order and then in each
        chunk's recording order (``n`` numbers them in that order). Raises
        `InvalidFieldError`
        for an unknown format or a closed or text-mode ``out`` and
        `ImportJobNotFoundError` when no job has this id (writing nothing).
        """
        name, params, sink = self._export_query(job_id, out, format)
        rows = self._copy(name, params, sink)
        if rows == 0:
            job = self._one("get_by_id", params, job_from_values)
            if (again := self._export_again(name, params, job, sink)) is not None:
                rows = self._copy(again, params, sink)
        sink.close()
        return rows

    # Every statement runs on the one cursor, under the lock, its driver
    # errors translated. Written out in each of _one, _all and _count, with
    # no helper between, and the lock taken with acquire/release rather
    # than `with` (in asyncio, `async with` adds two coroutines): this is
    # every call's path, and each level there is paid on every call.

    def _one(self, name: str, params: _Params, build: Callable[[Any], _T]) -> _T | None:
        self._lock.acquire()
        try:
            cursor = (self._cursor or self._new_cursor()).execute(self._sql[name], params)
            row = cursor.fetchone()
        except psycopg.Error as exc:
            raise translate(exc, params) from exc
        finally:
            self._lock.release()
        return None if row is None else build(row)

    def _all(
        self, name: str, params: _Params, build: Callable[[Any], _T], *, prepare: bool | None = None
    ) -> list[_T]:
        self._lock.acquire()
        try:
            cursor = (self._cursor or self._new_cursor()).execute(
                self._sql[name], params, prepare=prepare
            )
            rows = cursor.fetchall()
        except psycopg.Error as exc:
            raise translate(exc, params) from exc
        finally:
            self._lock.release()
        return [build(row) for row in rows]

    def _count(self, name: str, params: _Params) -> int:
        self._lock.acquire()
        try:
            cursor = (self._cursor or self._new_cursor()).execute(self._sql[name], params)
            return cursor.rowcount
        except psycopg.Error as exc:
            raise translate(exc, params) from exc
        finally:
            self._lock.release()

    def _copy(self, name: str, params: _Params, sink: _ExportSink) -> int:
        # A COPY ... TO STDOUT into sink; the rows it copied, from its command tag.
        self._lock.acquire()
        try:
            cursor = self._cursor or self._new_cursor()
            with cursor.copy(self._sql[name], params) as copy:
                for data in copy:
                    sink.write(data)
            return cursor.rowcount
        except psycopg.Error as exc:
            raise translate(exc, params) from exc
        finally:
            self._lock.release()

    def _new_cursor(self) -> psycopg.Cursor[Any]:
        # Made at the first call, not in __init__: a closed connection then
        # fails as a call, translated, like every other driver error. Rows in
        # binary: uuids, counters and times load without parsing text.
        self._cursor = repository_cursor(self._conn.cursor(binary=True))
        return self._cursor
