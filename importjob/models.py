"""The import job record and its lifecycle.

Lifecycle of `ImportJobStatus`::

    PENDING ──> PROCESSING ──> COMPLETED
       │             ├──────> FAILED
       │             └──────> CANCELLED
       ├──> FAILED
       └──> CANCELLED

COMPLETED, FAILED and CANCELLED are terminal: a job never leaves them.
`ImportJobRepository.rescue_stale` with ``requeue=True`` is the one way back
from PROCESSING to PENDING, for a job whose worker was lost.
Entering PROCESSING sets ``started_at``; entering a terminal status sets
``completed_at``. The repository does both in the statement that changes the
status, with the database's clock.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from importjob import _validate
from importjob.exceptions import InvalidFieldError

__all__ = ["ImportJob", "ImportJobStatus", "SourceType"]


class ImportJobStatus(enum.StrEnum):
    """Where an import job is in its lifecycle (see the module docstring)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Return whether the job can never change status again."""
        return self in _TERMINAL

    def next_statuses(self) -> frozenset[ImportJobStatus]:
        """Return the statuses a job in this status may move to."""
        return _TRANSITIONS[self]

    def can_transition_to(self, target: ImportJobStatus) -> bool:
        """Return whether the lifecycle allows moving from this status to ``target``."""
        return target in _TRANSITIONS[self]

    def previous_statuses(self) -> frozenset[ImportJobStatus]:
        """Return the statuses from which a job may move to this one."""
        return _SOURCES[self]

    @classmethod
    def parse(cls, value: object, field: str = "status") -> ImportJobStatus:
        """Return the status named by ``value`` (a member, its value or its name).

        Raises `InvalidFieldError` naming ``field`` for anything else.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            member = _STATUS_BY_TEXT.get(value.lower())
            if member is not None:
                return member
        raise InvalidFieldError(field, f"must be one of {', '.join(cls)}", value)


_TERMINAL = frozenset(
    {ImportJobStatus.COMPLETED, ImportJobStatus.FAILED, ImportJobStatus.CANCELLED}
)
_TRANSITIONS: Mapping[ImportJobStatus, frozenset[ImportJobStatus]] = {
    ImportJobStatus.PENDING: frozenset(
        {ImportJobStatus.PROCESSING, ImportJobStatus.FAILED, ImportJobStatus.CANCELLED}
    ),
    ImportJobStatus.PROCESSING: _TERMINAL,
    ImportJobStatus.COMPLETED: frozenset(),
    ImportJobStatus.FAILED: frozenset(),
    ImportJobStatus.CANCELLED: frozenset(),
}
_SOURCES: Mapping[ImportJobStatus, frozenset[ImportJobStatus]] = {
    target: frozenset(s for s, targets in _TRANSITIONS.items() if target in targets)
    for target in ImportJobStatus
}
_STATUS_BY_TEXT = {member.value: member for member in ImportJobStatus}


class SourceType(enum.StrEnum):
    """The format of the file an import reads."""

    CSV = "csv"
    JSON = "json"
    TEXT = "text"

    @classmethod
    def parse(cls, value: object) -> SourceType:
        """Return the source type named by ``value``; raise `InvalidFieldError` otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            member = _SOURCE_BY_TEXT.get(value.lower())
            if member is not None:
                return member
        raise InvalidFieldError("source_type", f"must be one of {', '.join(cls)}", value)


_SOURCE_BY_TEXT = {member.value: member for member in SourceType}


def _to_id(value: object) -> uuid.UUID:
    return _validate.job_id(value, "id")


def _to_status(value: object) -> ImportJobStatus:
    return ImportJobStatus.parse(value)


def _to_source_type(value: object) -> SourceType:
    return SourceType.parse(value)


def _to_filename(value: object) -> str:
    return _validate.filename(value)


def _to_worker_id(value: object) -> str | None:
    return None if value is None else _validate.worker_id(value)


def _to_errors(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple):
        raise InvalidFieldError("errors", "must be a list of dicts", value)
    return [_validate.error_entry(entry, "errors") for entry in value]


def _is_count(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    _validate.count(attribute.name, value)


def _is_aware(_: object, attribute: attrs.Attribute[datetime | None], value: object) -> None:
    _validate.aware_datetime(attribute.name, value)


def _json_value(_: object, __: object, value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@attrs.frozen(kw_only=True)
class ImportJob:
    """One import: its file, where it is in its lifecycle, its counts and its errors.

    Frozen: make changed copies with `attrs.evolve`, or change the stored job
    through `importjob.ImportJobRepository`. ``ImportJob(source_type="csv",
    filename="pairs.csv")`` is a valid new job with a fresh id.

    Every value is checked when the object is built; an invalid one raises
    `importjob.exceptions.InvalidFieldError` naming the field.
    ``created_at`` and ``updated_at`` are None until the database stores the job.

    ``error_count`` counts failed rows. ``errors`` keeps their entries, oldest
    first, up to the repository's bound; ``errors_dropped`` counts the entries
    that did not fit. ``errors`` may also hold job-level entries (the
    exception that ended an import, a lost worker), which no counter counts.
    ``worker_id`` and ``heartbeat_at`` say which worker runs the job and
    when it last showed life.
    """

    id: uuid.UUID = attrs.field(factory=uuid.uuid4, converter=_to_id)
    status: ImportJobStatus = attrs.field(default=ImportJobStatus.PENDING, converter=_to_status)
    source_type: SourceType = attrs.field(converter=_to_source_type)
    filename: str = attrs.field(converter=_to_filename)
    total_rows: int = attrs.field(default=0, validator=_is_count)
    processed_rows: int = attrs.field(default=0, validator=_is_count)
    success_count: int = attrs.field(default=0, validator=_is_count)
    error_count: int = attrs.field(default=0, validator=_is_count)
    errors: list[dict[str, Any]] = attrs.field(factory=list, converter=_to_errors)
    started_at: datetime | None = attrs.field(default=None, validator=_is_aware)
    completed_at: datetime | None = attrs.field(default=None, validator=_is_aware)
    created_at: datetime | None = attrs.field(default=None, validator=_is_aware)
    updated_at: datetime | None = attrs.field(default=None, validator=_is_aware)
    heartbeat_at: datetime | None = attrs.field(default=None, validator=_is_aware)
    worker_id: str | None = attrs.field(default=None, converter=_to_worker_id)
    errors_dropped: int = attrs.field(default=0, validator=_is_count)

    def __attrs_post_init__(self) -> None:
        # The same rules as the table's CHECK constraints, said first and better.
        if self.status.is_terminal and self.completed_at is None:
            raise InvalidFieldError(
                "completed_at", f"must be set when status is {self.status}", None
            )
        if not self.status.is_terminal and self.completed_at is not None:
            raise InvalidFieldError(
                "completed_at", f"must be unset when status is {self.status}", self.completed_at
            )
        if self.status is ImportJobStatus.PROCESSING and self.started_at is None:
            raise InvalidFieldError("started_at", "must be set when status is processing", None)

    @property
    def is_finished(self) -> bool:
        """Return whether the job is in a terminal status."""
        return self.status.is_terminal

    def to_dict(self) -> dict[str, Any]:
        """Return every field as JSON-ready values (ids and times as ISO strings)."""
        return attrs.asdict(self, value_serializer=_json_value)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ImportJob:
        """Build a job from a row of the ``import_job`` table, column by column."""
        return cls(
            id=row["id"],
            status=row["status"],
            source_type=row["source_type"],
            filename=row["filename"],
            total_rows=row["total_rows"],
            processed_rows=row["processed_rows"],
            success_count=row["success_count"],
            error_count=row["error_count"],
            errors=row["errors"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            heartbeat_at=row["heartbeat_at"],
            worker_id=row["worker_id"],
            errors_dropped=row["errors_dropped"],
        )
