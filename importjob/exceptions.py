"""Exceptions of the import system.

Every exception here derives from `DataImportError`. Each keeps its context
as attributes, prints a readable message, survives `pickle` (workers run in
other processes) and turns into the JSON-ready dict stored in a job's
``errors`` through `to_dict()`.

Pickling works because each class passes exactly its constructor arguments,
in order, to `BaseException.__init__`: `BaseException.__reduce__` rebuilds
the exception by calling the class with ``self.args``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

__all__ = [
    "DataImportError",
    "DuplicateDetectedError",
    "ErrorBudgetExceededError",
    "ImportJobCancelledError",
    "ImportJobDatabaseError",
    "ImportJobExistsError",
    "ImportJobNotFoundError",
    "ImportJobReleasedError",
    "ImportJobStoppedError",
    "ImportJobTimeoutError",
    "ImportValidationError",
    "InvalidFieldError",
    "InvalidStatusTransitionError",
    "ParseError",
    "SchemaMissingError",
    "SourceAlreadyImportedError",
]


def _json_ready(value: object) -> object:
    # Context values end up in a jsonb column. Anything JSON has no type for
    # (an offending value can be any object) is stored as its repr.
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return _json_ready(value.value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


class DataImportError(Exception):
    """Base class of every error of the import system.

    Named so as not to shadow Python's builtin `ImportError`. ``label`` is
    the outcome label a tracker counts a row skipped for this error under
    (``t.skipped(exc)``): the class's own, else its name.
    """

    label: ClassVar[str | None] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        """Return the human-readable message, without context."""
        return str(self.args[self._message_index()])

    def _message_index(self) -> int:
        return 0

    def context(self) -> dict[str, object]:
        """Return the context fields of this error (everything but the message)."""
        return {}

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict stored as one entry of a job's ``errors``.

        It holds ``type`` (the class name), ``message`` and the context fields.
        """
        entry: dict[str, Any] = {"type": type(self).__name__, "message": self.message}
        entry.update((key, _json_ready(value)) for key, value in self.context().items())
        return entry

    def __eq__(self, other: object) -> bool:
        # Equal when of the same class with the same arguments, so that a
        # pickled and unpickled error compares equal to the original.
        if type(other) is not type(self) or not isinstance(other, DataImportError):
            return NotImplemented
        return self.args == other.args

    def __hash__(self) -> int:
        return hash((type(self), self.args))


class ParseError(DataImportError):
    """A line of the source file could not be parsed."""

    def __init__(self, line_number: int, message: str, raw_data: str | None = None) -> None:
        Exception.__init__(self, line_number, message, raw_data)
        self.line_number = line_number
        self.raw_data = raw_data

    def _message_index(self) -> int:
        return 1

    def context(self) -> dict[str, object]:
        """Return the line number and the raw data of the line."""
        return {"line_number": self.line_number, "raw_data": self.raw_data}

    def __str__(self) -> str:
        return f"line {self.line_number}: {self.message}"


class ImportValidationError(DataImportError):
    """A parsed row holds a value that does not pass validation."""

    def __init__(self, row: int, field: str, message: str, value: object = None) -> None:
        Exception.__init__(self, row, field, message, value)
        self.row = row
        self.field = field
        self.value = value

    def _message_index(self) -> int:
        return 2

    def context(self) -> dict[str, object]:
        """Return the row, the field and the offending value."""
        return {"row": self.row, "field": self.field, "value": self.value}

    def __str__(self) -> str:
        return f"row {self.row}, field {self.field!r}: {self.message}"


class DuplicateDetectedError(DataImportError):
    """A row duplicates a question-answer pair that already exists.

    A row skipped for it (``t.skipped(exc)``) counts under ``"duplicate"``.
    """

    label = "duplicate"

    def __init__(self, row: int, existing_id: UUID, similarity: float) -> None:
        Exception.__init__(self, row, existing_id, similarity)
        self.row = row
        self.existing_id = existing_id
        self.similarity = similarity

    @property
    def message(self) -> str:
        """Return the message, built from the context."""
        return f"duplicate of {self.existing_id} (similarity {self.similarity:.3f})"

    def context(self) -> dict[str, object]:
        """Return the row, the id of the existing pair and the similarity."""
        return {"row": self.row, "existing_id": self.existing_id, "similarity": self.similarity}

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


class _JobIdError(DataImportError):
    # An error about one job, said entirely by its id.
    _template = "import job {job_id}"

    def __init__(self, job_id: UUID) -> None:
        Exception.__init__(self, job_id)
        self.job_id = job_id

    @property
    def message(self) -> str:
        """Return the message, built from the job id."""
        return self._template.format(job_id=self.job_id)

    def context(self) -> dict[str, object]:
        """Return the job id."""
        return {"job_id": self.job_id}


class ImportJobNotFoundError(_JobIdError):
    """No import job has this id."""

    _template = "import job {job_id} not found"


class ImportJobExistsError(_JobIdError):
    """An import job with this id exists already."""

    _template = "import job {job_id} exists already"


class ImportJobStoppedError(DataImportError):
    """The job ended while a worker was still running it.

    A tracker raises it in the worker at its next flush after someone else
    ended the job (for example `importjob.ImportJobRepository.rescue_stale`
    took it for lost). The job keeps the status it was given.
    """

    def __init__(self, job_id: UUID, status: str) -> None:
        Exception.__init__(self, job_id, status)
        self.job_id = job_id
        self.status = status

    @property
    def message(self) -> str:
        """Return the message, built from the job id and its status."""
        return f"import job {self.job_id} was ended elsewhere: it is {_json_ready(self.status)}"

    def context(self) -> dict[str, object]:
        """Return the job id and the status the job ended in."""
        return {"job_id": self.job_id, "status": self.status}


class ImportJobCancelledError(ImportJobStoppedError):
    """Someone cancelled the job while a worker was running it."""

    def __init__(self, job_id: UUID, status: str = "cancelled") -> None:
        super().__init__(job_id, status)

    @property
    def message(self) -> str:
        """Return the message, built from the job id."""
        return f"import job {self.job_id} was cancelled"


class ImportJobReleasedError(ImportJobStoppedError):
    """The worker stopped before the job ended, and handed it back to PENDING.

    A tracker given ``stop`` raises it at the row after which ``stop()``
    returned True (`importjob worker` on SIGTERM), once the job is PENDING
    again with its counts and checkpoint as last flushed, for another
    worker to claim and resume.
    """

    def __init__(self, job_id: UUID, status: str = "pending") -> None:
        super().__init__(job_id, status)

    @property
    def message(self) -> str:
        """Return the message, built from the job id."""
        return f"import job {self.job_id} was handed back to pending: its worker is stopping"


class ErrorBudgetExceededError(ImportJobStoppedError):
    """A tracked import failed more rows than its error budget allows.

    The tracker ended the job FAILED, with this error as an entry, and
    raises it in the worker. ``limit`` names the limit passed
    (``"max_failures"`` or ``"max_failure_rate"``) and ``allowed`` its value;
    ``error_count`` and ``processed_rows`` are the job's counts at that flush.
    """

    def __init__(
        self,
        job_id: UUID,
        limit: str,
        allowed: float,
        error_count: int,
        processed_rows: int,
    ) -> None:
        Exception.__init__(self, job_id, limit, allowed, error_count, processed_rows)
        self.job_id = job_id
        self.limit = limit
        self.allowed = allowed
        self.error_count = error_count
        self.processed_rows = processed_rows
        self.status = "failed"

    @property
    def message(self) -> str:
        """Return the message, built from the limit and the counts."""
        return (
            f"import job {self.job_id} stopped: {self.error_count} of {self.processed_rows} "
            f"rows failed, past {self.limit}={self.allowed}"
        )

    def context(self) -> dict[str, object]:
        """Return the job id, the limit passed and the counts."""
        return {
            "job_id": self.job_id,
            "limit": self.limit,
            self.limit: self.allowed,
            "error_count": self.error_count,
            "processed_rows": self.processed_rows,
        }


class SourceAlreadyImportedError(DataImportError):
    """``create(job, unique_source=True)`` found the job's file imported already.

    ``existing_job_id`` is the pending, processing or completed job of the
    same ``source_sha256``. Nothing was written.
    """

    def __init__(self, job_id: UUID, source_sha256: str, existing_job_id: UUID | None) -> None:
        Exception.__init__(self, job_id, source_sha256, existing_job_id)
        self.job_id = job_id
        self.source_sha256 = source_sha256
        self.existing_job_id = existing_job_id

    @property
    def message(self) -> str:
        """Return the message, built from the ids."""
        return (
            f"import job {self.job_id}: its file (sha256 {self.source_sha256}) was imported "
            f"already by job {self.existing_job_id}"
        )

    def context(self) -> dict[str, object]:
        """Return the refused job's id, the file's digest and the existing job's id."""
        return {
            "job_id": self.job_id,
            "source_sha256": self.source_sha256,
            "existing_job_id": self.existing_job_id,
        }


class InvalidStatusTransitionError(DataImportError):
    """The lifecycle forbids moving a job from its status to the one asked for.

    ``from_status`` is the status the job had when the change was refused.
    """

    def __init__(self, job_id: UUID | None, from_status: str, to_status: str) -> None:
        Exception.__init__(self, job_id, from_status, to_status)
        self.job_id = job_id
        self.from_status = from_status
        self.to_status = to_status

    @property
    def message(self) -> str:
        """Return the message, built from the two statuses."""
        where = f"import job {self.job_id}" if self.job_id is not None else "import job"
        return (
            f"{where} cannot go from {_json_ready(self.from_status)} "
            f"to {_json_ready(self.to_status)}"
        )

    def context(self) -> dict[str, object]:
        """Return the job id and both statuses."""
        return {"job_id": self.job_id, "from_status": self.from_status, "to_status": self.to_status}


class InvalidFieldError(DataImportError, ValueError):
    """A value given to the library is not valid for the field it is meant for.

    Raised before anything is written. Also a `ValueError`, so code that
    guards calls with ``except ValueError`` keeps working.
    """

    def __init__(self, field: str, message: str, value: object = None) -> None:
        Exception.__init__(self, field, message, value)
        self.field = field
        self.value = value

    def _message_index(self) -> int:
        return 1

    def context(self) -> dict[str, object]:
        """Return the field name and, as text, the rejected value."""
        return {"field": self.field, "value": _short_repr(self.value)}

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (got {_short_repr(self.value)})"


class ImportJobDatabaseError(DataImportError):
    """The database failed a statement for a reason other than the caller's input.

    The driver's exception is kept as ``__cause__``.
    """


class ImportJobTimeoutError(ImportJobDatabaseError):
    """The database cancelled a statement: ``statement_timeout``, ``lock_timeout`` or a cancel.

    The message says which; nothing the statement would have written stays.
    """


class SchemaMissingError(ImportJobDatabaseError):
    """The database has no ``import_job`` table: the migrations were not applied."""


def _short_repr(value: object, limit: int = 80) -> str:
    # A rejected value can be a 10 MB string: keep messages readable.
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
