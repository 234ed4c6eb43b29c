"""The I/O-free core the two repositories share: parameters in, results out.

`ImportJobRepository` (`importjob.repository`) and its asyncio twin
`AsyncImportJobRepository` (`importjob.repository_async`) run the same
statements from ``sql/``, with the same checks: `_RepositoryCore` builds
every call's parameters and reads every result, the two classes only
execute, as psycopg's ``_connection_base`` serves its two connections.
"""

from __future__ import annotations

import enum
import io
import json
from collections.abc import (
    Mapping,
    Sequence,
)
from datetime import timedelta
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg.adapt import Buffer, Loader
from psycopg.pq import Format

from importjob import _validate
from importjob._queries import queries
from importjob.exceptions import (
    DataImportError,
    ImportJobCancelledError,
    ImportJobNotFoundError,
    InvalidFieldError,
    InvalidStatusTransitionError,
    SourceAlreadyImportedError,
)
from importjob.models import (
    Chunk,
    ErrorGroup,
    ErrorPage,
    ImportJob,
    ImportJobStatus,
    LoggedError,
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
    "Advanced",
    "ErrorEntry",
]

DEFAULT_MAX_ERRORS = 1000
DEFAULT_ERROR_LOG_LIMIT = 1_000_000
# Distinct (type, field, message) groups a job counts; the entries of any
# further group count under one "other" group, so a message that embeds the
# row's value cannot grow the job's groups without end.
MAX_ERROR_GROUPS = 1000
# Distinct outcome labels a job counts; the rows of any further label count
# under "other", so labels that embed a row's value cannot grow the row.
MAX_OUTCOME_LABELS = 32
EXPORT_FORMATS = ("csv", "jsonl")
# job_metrics counts a job as showing no life after this long without a heartbeat.
DEFAULT_STALE_AFTER = timedelta(minutes=5)
# export_errors hands the file this much at a time, not one write per entry.
_EXPORT_CHUNK = 1 << 16

_Params = dict[str, Any]


class _Keep(enum.Enum):
    # advance's default checkpoint: leave the job's as it is (None clears it).
    CHECKPOINT = "the job's checkpoint, unchanged"


_KEEP = _Keep.CHECKPOINT
_T = TypeVar("_T")
_C = TypeVar("_C", psycopg.Cursor[Any], psycopg.AsyncCursor[Any])
_Previous = tuple[str | None, ImportJob | None]


# Rows come as tuples (psycopg builds them in C) of values in the order the
# statements select them, importjob.models.COLUMNS: no column names are
# looked up per result, and jobs are built from them in one pass.


def _values(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return values


def _previous_and_job(values: Sequence[Any]) -> _Previous:
    # start: a status the job had, then the job (all NULL if unchanged).
    return values[0], None if values[1] is None else job_from_values(values[1:])


ErrorEntry = Mapping[str, Any] | DataImportError


def _advance_query(params: _Params) -> str:
    # Most flushes carry no error entry: they run the statement that leaves
    # the errors, the log and the reasons be (a quarter of the server's work).
    if params["entries"] == "[]" and not params["entries_dropped"]:
        return "advance"
    return "advance_entries"


def _reopen_params(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> _Params:
    """Return what it takes to open another connection to ``conn``'s database.

    Read when the repository is made, while the connection can still tell.
    """
    try:
        info = conn.info
        params: _Params = {"conninfo": info.dsn}
        if info.password:
            params["password"] = info.password
    except psycopg.Error:  # closed already: every call will say so
        return {"conninfo": ""}
    return params


class JsonbLoader(Loader):
    """Load a jsonb value sent in binary: its version byte (1), then its JSON text.

    Most of a job's jsonb values are empty (its metadata and outcomes, a
    list's errors): those are built without calling the JSON decoder, whose
    fixed cost per value is most of what reading a job's row costs.
    """

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        if data[:1] != b"\x01":
            raise psycopg.DataError(f"unknown jsonb binary format: {bytes(data[:1])!r}")
        if data == b"\x01{}":
            return {}
        if data == b"\x01[]":
            return []
        return json.loads(bytes(data[1:]))


def repository_cursor(cursor: _C) -> _C:
    """Return ``cursor`` set up as both repositories read: jsonb through `JsonbLoader`."""
    cursor.adapters.register_loader("jsonb", JsonbLoader)
    return cursor


class Advanced(NamedTuple):
    """What a flush reads back: the job's status and the counts a tracker's error budget checks."""

    status: ImportJobStatus
    processed_rows: int
    error_count: int


class _ExportSink:
    """Gather the COPY data of an export and hand it to the file in chunks.

    Nothing reaches the file before the first chunk is full or `close`, so
    the export of an unknown job, told apart after the COPY (no rows), writes
    nothing, not even the CSV header. One call per row: kept to an append
    and a length check.
    """

    def __init__(self, out: Any) -> None:
        self._write = out.write
        self._chunk = bytearray()

    def write(self, data: Any) -> None:
        chunk = self._chunk
        chunk += data
        if len(chunk) >= _EXPORT_CHUNK:
            self._write(chunk)
            chunk.clear()

    def discard(self) -> None:
        """Forget what is gathered (a header, while nothing reached the file)."""
        self._chunk.clear()

    def close(self) -> None:
        """Write what is left."""
        if self._chunk:
            self._write(self._chunk)
            self._chunk.clear()


def _check_out(out: object) -> None:
    """Refuse what cannot take the export's bytes: a closed or text-mode file."""
    if isinstance(out, io.TextIOBase) or not callable(getattr(out, "write", None)):
        raise InvalidFieldError("out", "must be a binary file object (open with 'wb')", out)
    if getattr(out, "closed", False):
        raise InvalidFieldError("out", "must be open", out)
    mode = getattr(out, "mode", "b")
    if isinstance(mode, str) and "b" not in mode:
        raise InvalidFieldError("out", "must be a binary file object (open with 'wb')", out)
    writable = getattr(out, "writable", None)
    if callable(writable) and not writable():
        raise InvalidFieldError("out", "must be open for writing", out)


class _RepositoryCore:
    """The parameters and results of every call, without I/O: shared by both repositories.

    Each ``_*_params`` checks its input first (`InvalidFieldError`, nothing
    sent); each ``_*_result`` turns a statement's row into the call's
    result or exception. The twins only execute.
    """

    def __init__(
        self,
        *,
        max_errors: int = DEFAULT_MAX_ERRORS,
        error_log_limit: int | None = DEFAULT_ERROR_LOG_LIMIT,
    ) -> None:
        self._max_errors = _validate.count("max_errors", max_errors)
        self._error_log_limit = (
            None
            if error_log_limit is None
            else _validate.positive("error_log_limit", error_log_limit)
        )
        # The bounds every statement that records error entries applies.
        self._limits: _Params = {
            "max_errors": self._max_errors,
            "error_log_limit": self._error_log_limit,
            "max_groups": MAX_ERROR_GROUPS,
        }
        # The statements by name, looked up in one step on every call.
        self._sql = queries()

    @property
    def max_errors(self) -> int:
        """Return how many error entries a job keeps at most in its ``errors``."""
        return self._max_errors

    @property
    def error_log_limit(self) -> int | None:
        """Return how many error entries a job's error log keeps at most (None: all)."""
        return self._error_log_limit

    # Parameters. Each checks its input and raises InvalidFieldError first.

    def _create_params(self, job: object) -> _Params:
        if not isinstance(job, ImportJob):
            raise InvalidFieldError("job", "must be an ImportJob", job)
        if job.status is not ImportJobStatus.PENDING:
            raise InvalidFieldError(
                "status", "a new job must be pending (change it with update_status)", job.status
            )
        if job.started_at is not None:
            raise InvalidFieldError("started_at", "a new job has not started", job.started_at)
        for name in ("parent_id", "chunk", "chunk_index", "chunks"):
            if getattr(job, name) is not None:
                raise InvalidFieldError(name, "is set by create_chunked", getattr(job, name))
        return {
            "id": job.id,
            "status": job.status.value,
            "source_type": job.source_type.value,
            "filename": job.filename,
            "total_rows": job.total_rows,
            "processed_rows": job.processed_rows,
            "success_count": job.success_count,
            "error_count": job.error_count,
            "errors": _validate.encode_json(job.errors),
            "created_at": job.created_at,
            "checkpoint": _validate.checkpoint(job.checkpoint),
            "source_sha256": job.source_sha256,
            "source_size": job.source_size,
            "owner": job.owner,
            "metadata": _validate.encode_json(job.metadata),
            "skipped_count": job.skipped_count,
            "outcomes": _validate.encode_json(job.outcomes),
        }

    def _chunked_params(self, job: object, chunks: object, keep_going: object) -> _Params:
        params = self._create_params(job)
        if isinstance(chunks, str | bytes) or not isinstance(chunks, Sequence):
            raise InvalidFieldError("chunks", "must be a list of importjob.Chunk", chunks)
        if not chunks:
            raise InvalidFieldError("chunks", "must hold at least one chunk", chunks)
        pieces = []
        for piece in chunks:
            if not isinstance(piece, Chunk):
                raise InvalidFieldError("chunks", "must be a list of importjob.Chunk", piece)
            pieces.append({"total_rows": piece.total_rows, "spec": piece.spec})
        for name in ("processed_rows", "success_count", "error_count", "skipped_count"):
            if params[name]:
                raise InvalidFieldError(
                    name, "a chunked import counts its chunks' rows", params[name]
                )
        if not isinstance(keep_going, bool):
            raise InvalidFieldError("keep_going", "must be True or False", keep_going)
        params["chunks"] = _validate.encode_json(pieces)
        params["keep_going"] = keep_going
        return params

    def _create_query(self, job: object, unique_source: object) -> tuple[str, _Params]:
        params = self._create_params(job)
        if unique_source is False:
            return "create", params
        if unique_source is not True:
            raise InvalidFieldError("unique_source", "must be True or False", unique_source)
        if params["source_sha256"] is None:
            raise InvalidFieldError(
                "source_sha256", "must be set to create with unique_source (importjob.fingerprint)"
            )
        return "create_unique", params

    @staticmethod
    def _id_params(job_id: object) -> _Params:
        return {"id": _validate.job_id(job_id)}

    @staticmethod
    def _owners_params(job_ids: object) -> _Params:
        if isinstance(job_ids, str | bytes) or not isinstance(job_ids, Sequence):
            raise InvalidFieldError("job_ids", "must be a sequence of job ids", job_ids)
        return {"ids": [_validate.job_id(job_id) for job_id in job_ids]}

    @staticmethod
    def _progress_params(
        job_id: object, processed: object, success: object, errors: object, total: object
    ) -> _Params:
        return {
            "id": _validate.job_id(job_id),
            "processed_rows": _validate.count("processed", processed),
            "success_count": _validate.count("success", success),
            "error_count": _validate.count("errors", errors),
            "total_rows": None if total is None else _validate.count("total", total),
        }

    @staticmethod
    def _status_params(job_id: object, status: object) -> _Params:
        target = ImportJobStatus.parse(status)
        return {
            "id": _validate.job_id(job_id),
            "status": target.value,
            "from_statuses": [source.value for source in target.previous_statuses()],
            "starts": target is ImportJobStatus.PROCESSING,
            "terminal": target.is_terminal,
        }

    def _advance_params(
        self,
        job_id: object,
        processed: object = 0,
        success: object = 0,
        errors: object = 0,
        *,
        entries: object = (),
        entries_field: str = "entries",
        entries_dropped: object = 0,
        worker_id: object = None,
        batch_id: object = None,
        checkpoint: object = _KEEP,
        skipped: object = 0,
        outcomes: object = None,
    ) -> _Params:
        batch_key, batch_number = _validate.batch_id(batch_id)
        keep = checkpoint is _KEEP
        return {
            "set_checkpoint": not keep,
            "checkpoint": None if keep else _validate.checkpoint(checkpoint),
            "id": _validate.job_id(job_id),
            "processed": _validate.count("processed", processed),
            "success": _validate.count("success", success),
            "errors": _validate.count("errors", errors),
            "skipped": _validate.count("skipped", skipped),
            "outcomes": "{}" if outcomes is None else _validate.outcomes(outcomes),
            "max_labels": MAX_OUTCOME_LABELS,
            "entries": _validate.dump_entries(entries, entries_field),
            "entries_dropped": _validate.count("entries_dropped", entries_dropped),
            **self._limits,
            "worker_id": None if worker_id is None else _validate.worker_id(worker_id),
            "batch_key": batch_key,
            "batch_number": batch_number,
        }

    def _error_params(self, job_id: object, error: object) -> _Params:
        # add_error's statement reads only these: a flush's counters, worker
        # and batch are not its to check.
        return {
            "id": _validate.job_id(job_id),
            "entries": _validate.dump_entries([error], "error"),
            **self._limits,
        }

    @staticmethod
    def _list_query(status: object, limit: object, owner: object) -> tuple[str, _Params]:
        params: _Params = {
            "status": ImportJobStatus.parse(status).value,
            "limit": _validate.positive("limit", limit),
        }
        if owner is None:
            return "list_by_status", params
        params["owner"] = _validate.owner(owner)
        return "list_by_status_of_owner", params

    @staticmethod
    def _metadata_params(job_id: object, metadata: object) -> _Params:
        return {"id": _validate.job_id(job_id), "metadata": _validate.metadata(metadata)}

    @staticmethod
    def _worker_params(worker_id: object) -> _Params:
        return {"worker_id": _validate.worker_or_current(worker_id)}

    def _start_params(self, job_id: object, worker_id: object) -> _Params:
        return {"id": _validate.job_id(job_id), **self._worker_params(worker_id)}

    @staticmethod
    def _release_params(job_id: object, worker_id: object) -> _Params:
        return {"id": _validate.job_id(job_id), "worker_id": _validate.worker_id(worker_id)}

    def _rescue_params(self, older_than: object, requeue: object) -> _Params:
        if not isinstance(requeue, bool):
            raise InvalidFieldError("requeue", "must be True or False", requeue)
        return {
            "older_than": _validate.duration("older_than", older_than),
            "requeue": requeue,
            **self._limits,
        }

    @staticmethod
    def _purge_params(older_than: object, batch: object) -> _Params:
        return {
            "older_than": _validate.duration("older_than", older_than),
            "batch_size": _validate.positive("batch", batch),
        }

    @staticmethod
    def _summary_params(job_id: object, limit: object) -> _Params:
        return {"id": _validate.job_id(job_id), "limit": _validate.positive("limit", limit)}

    @staticmethod
    def _error_page_params(
        job_id: object, after: object, limit: object, limit_field: str = "limit"
    ) -> _Params:
        # iter_errors checks its page size as "batch", error_page as "limit".
        return {
            "id": _validate.job_id(job_id),
            "after": _validate.count("after", after),
            "batch": _validate.positive(limit_field, limit),
        }

    @staticmethod
    def _metrics_params(stale_after: object) -> _Params:
        return {"stale_after": _validate.duration("stale_after", stale_after)}

    @staticmethod
    def _counts_params(owner: object, at_most: object) -> _Params:
        # count_by_status.sql runs unprepared, as list_recent.sql: a NULL owner folds away.
        return {
            "owner": _validate.owner(owner),
            "at_most": _validate.positive("at_most", at_most),
            "statuses": [status.value for status in ImportJobStatus],
        }

    @staticmethod
    def _export_query(
        job_id: object,
        out: object,
        format: object,
    ) -> tuple[str, _Params, _ExportSink]:
        params: _Params = {"id": _validate.job_id(job_id)}
        if format == "csv":
            name = "export_errors_csv"
        elif format == "jsonl":
            name = "export_errors_jsonl"
        else:
            raise InvalidFieldError("format", f"must be one of {', '.join(EXPORT_FORMATS)}", format)
        _check_out(out)
        return name, params, _ExportSink(out)

    @staticmethod
    def _export_again(
        name: str, params: _Params, job: ImportJob | None, sink: _ExportSink
    ) -> str | None:
        # The export found no entry: an unknown job, a job without entries
        # (its export stands), or a chunked import, whose entries are its
        # chunks': exported by the statement returned, in place of the first.
        if job is None:
            raise ImportJobNotFoundError(params["id"])
        if job.chunks is None:
            return None
        sink.discard()
        return f"{name}_chunked"

    @staticmethod
    def _recent_params(
        status: object,
        limit: object,
        with_errors: object,
        *,
        owner: object,
        metadata: object,
        filename: object,
    ) -> _Params:
        # list_recent.sql runs unprepared: each call's plan is made for the
        # filters it has (a NULL filter folds away), so each uses its index.
        if not isinstance(with_errors, bool):
            raise InvalidFieldError("with_errors", "must be True or False", with_errors)
        contains = None if metadata is None else _validate.metadata(metadata)
        return {
            "status": None if status is None else ImportJobStatus.parse(status).value,
            "owner": _validate.owner(owner),
            # {} is contained in every job's metadata: no filter.
            "metadata": None if contains == "{}" else contains,
            "filename": None if filename is None else _validate.filename(filename),
            "limit": _validate.positive("limit", limit),
            "with_errors": with_errors,
        }

    # Results.

    @staticmethod
    def _status_refused(params: _Params, row: tuple[Any, ...] | None) -> None:
        # update_status changed nothing: say why, from the status read after
        # it, or return to try again when the job has moved since into a
        # status the transition may leave (statuses only move forward, so
        # that happens at most twice).
        # The lifecycle first: an ended import refuses any change alike,
        # chunked or not (a cancel of one is a conflict, not a bad value).
        if row is None:
            raise ImportJobNotFoundError(params["id"])
        if row[0] not in params["from_statuses"]:
            raise InvalidStatusTransitionError(
                params["id"], ImportJobStatus(row[0]), ImportJobStatus(params["status"])
            )
        if row[1] is not None:
            raise InvalidFieldError(
                "status",
                "a chunked import's status follows its chunks (cancel stops them all)",
                params["status"],
            )

    @staticmethod
    def _start_result(params: _Params, row: _Previous | None) -> ImportJob:
        if row is None:
            raise ImportJobNotFoundError(params["id"])
        previous_text, job = row
        if job is None:
            previous = ImportJobStatus(str(previous_text))
            if previous is ImportJobStatus.CANCELLED:
                raise ImportJobCancelledError(params["id"])
            raise InvalidStatusTransitionError(params["id"], previous, ImportJobStatus.PROCESSING)
        return job

    @staticmethod
    def _advance_result(params: _Params, row: tuple[Any, ...] | None) -> Advanced:
        if row is None:
            raise ImportJobNotFoundError(params["id"])
        return Advanced(ImportJobStatus(row[0]), row[1], row[2])

    @staticmethod
    def _created_result(
        job: ImportJob, params: _Params, row: tuple[Any, ...] | None
    ) -> ImportJob | None:
        """Return the job create_unique stored; raise when its file was imported.

        None: the unique index stopped it, the job that did is not in the
        statement's snapshot (the caller reads it with source_imported).
        """
        if row is None:
            return None
        existing, *values = row
        if existing is not None:
            raise SourceAlreadyImportedError(params["id"], params["source_sha256"], existing)
        return job_as_created(job, values)

    @staticmethod
    def _summary_result(params: _Params, rows: list[tuple[Any, ...]]) -> list[ErrorGroup]:
        if not rows:
            raise ImportJobNotFoundError(params["id"])
        return [
            ErrorGroup(type=type_, field=field, message=message, count=count, other=other)
            for type_, field, message, count, other in rows
            if count is not None
        ]

    @staticmethod
    def _error_page_result(params: _Params, rows: list[tuple[Any, ...]]) -> ErrorPage:
        # error_page.sql: no row for an unknown job, one row of NULLs for an empty page.
        if not rows:
            raise ImportJobNotFoundError(params["id"])
        entries = tuple(LoggedError(n, entry) for n, entry in rows if n is not None)
        full = len(entries) == params["batch"]
        return ErrorPage(entries=entries, next_after=entries[-1].n if full else None)

    @staticmethod
    def _metrics_result(rows: list[tuple[Any, ...]]) -> dict[ImportJobStatus, StatusMetrics]:
        # job_metrics.sql has a row only for a status that has jobs: the others count none.
        found = {ImportJobStatus(row[0]): row for row in rows}
        metrics: dict[ImportJobStatus, StatusMetrics] = {}
        for status in ImportJobStatus:
            _, jobs, processed, failed, skipped, oldest, stale = found.get(
                status, (None, 0, 0, 0, 0, None, 0)
            )
            metrics[status] = StatusMetrics(
                status=status,
                jobs=jobs,
                processed_rows=int(processed),
                failed_rows=int(failed),
                skipped_rows=int(skipped),
                oldest_age_seconds=oldest,
                without_heartbeat=stale,
            )
        return metrics

    @staticmethod
    def _counts_result(rows: list[tuple[Any, ...]]) -> dict[ImportJobStatus, int]:
        return {ImportJobStatus(status): jobs for status, jobs in rows}

    @staticmethod
    def _purge_result(row: tuple[int, int] | None) -> tuple[int, bool]:
        """Return the jobs a purge batch deleted, and whether another batch is due."""
        if row is None:
            return 0, False
        jobs, entries = row
        return jobs, jobs + entries > 0

    @staticmethod
    def _found(params: _Params, rowcount: int) -> None:
        if rowcount == 0:
            raise ImportJobNotFoundError(params["id"])
