"""The import job record and its lifecycle.

Lifecycle of `ImportJobStatus`::

    PENDING ──> PROCESSING ──> COMPLETED
       │             ├──────> FAILED
       │             └──────> CANCELLED
       ├──> FAILED
       └──> CANCELLED

COMPLETED, FAILED and CANCELLED are terminal: a job never leaves them.
Two ways lead back from PROCESSING to PENDING, for another worker to resume
the job: `ImportJobRepository.rescue_stale` with ``requeue=True``, for a job
whose worker was lost, and `ImportJobRepository.release`, for one whose
worker is stopping.
Entering PROCESSING sets ``started_at``; entering a terminal status sets
``completed_at``. The repository does both in the statement that changes the
status, with the database's clock.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

import attrs

from importjob import _validate
from importjob.exceptions import InvalidFieldError

__all__ = [
    "ErrorGroup",
    "ErrorPage",
    "ImportJob",
    "ImportJobStatus",
    "LoggedError",
    "SourceType",
    "StatusMetrics",
]


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


def _is_checkpoint(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _validate.checkpoint(value, attribute.name)


def _to_sha256(value: object) -> str | None:
    return None if value is None else _validate.sha256(value)


def _to_owner(value: object) -> str | None:
    return _validate.owner(value)


def _to_metadata(value: object) -> dict[str, Any]:
    _validate.metadata(value)
    return dict(cast(Mapping[str, Any], value))  # a Mapping: checked above


def _is_outcomes(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict):
        raise InvalidFieldError(attribute.name, "must be a dict of label to rows", value)
    _validate.outcomes(value, attribute.name)


def _to_parent_id(value: object) -> uuid.UUID | None:
    return None if value is None else _validate.job_id(value, "parent_id")


def _is_chunk(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _validate.checkpoint(value, attribute.name)


def _is_size(_: object, attribute: attrs.Attribute[int | None], value: object) -> None:
    if value is not None:
        _validate.count(attribute.name, value)


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

    ``error_count`` counts failed rows. Every error entry is kept in the
    job's error log, in recording order, up to the repository's
    ``error_log_limit``: ``errors_logged`` counts the entries kept (read
    them all with ``iter_errors`` or ``export_errors``). ``errors`` holds the
    entries given at create, then repeats the first entries of the log, up
    to the repository's ``max_errors`` in all; ``errors_dropped`` counts the
    recorded entries it did not take.
    Entries that are no failed row (the exception that ended an import, a
    lost worker) are kept the same way; ``error_count`` does not count them.
    ``worker_id`` and ``heartbeat_at`` say which worker runs the job and
    when it last showed life.
    ``checkpoint`` is where its workers got to in the file (any JSON value, at
    most 8 KiB of JSON: a row number, a byte offset, a page token), stored
    with the counts of the rows before it; a resumed import starts there.
    ``source_sha256`` and ``source_size`` fingerprint the file read (see
    `importjob.fingerprint`), for ``create(job, unique_source=True)``.
    ``owner`` is who the import belongs to (a tenant, a user id: 1 to 200
    characters without control characters), or None; set at create, never
    changed by progress. Lists filter by it, and a file is imported once
    per owner. ``metadata`` holds the application's own fields (a JSON
    object of at most 8 KiB), replaced by ``update_metadata``.
    ``skipped_count`` counts rows deliberately not imported (a duplicate),
    which are no failure: a tracked import keeps ``processed_rows ==
    success_count + error_count + skipped_count``. ``outcomes`` counts rows
    per label of the application's (``"created"``, ``"duplicate"``),
    imported and skipped alike: at most 32 labels, the rows of any further
    label counted under ``"other"``.
    A chunked import (`ImportJobRepository.create_chunked`) is a parent job
    with ``chunks`` set, whose counts and outcomes read as the sums of its
    chunks' and whose status follows theirs, and one job per chunk, claimed
    by workers like any job: ``parent_id`` names its parent,
    ``chunk_index`` is its place (from 0) and ``chunk`` the application's
    description of the piece. ``keep_going``, on a parent: a failed chunk
    lets the others go on (the parent fails once all ended) instead of
    failing the import at once.
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
    errors_logged: int = attrs.field(default=0, validator=_is_count)
    checkpoint: Any = attrs.field(default=None, validator=_is_checkpoint)
    source_sha256: str | None = attrs.field(default=None, converter=_to_sha256)
    source_size: int | None = attrs.field(default=None, validator=_is_size)
    owner: str | None = attrs.field(default=None, converter=_to_owner)
    metadata: dict[str, Any] = attrs.field(factory=dict, converter=_to_metadata)
    skipped_count: int = attrs.field(default=0, validator=_is_count)
    outcomes: dict[str, int] = attrs.field(factory=dict, validator=_is_outcomes)
    parent_id: uuid.UUID | None = attrs.field(default=None, converter=_to_parent_id)
    chunk: Any = attrs.field(default=None, validator=_is_chunk)
    chunk_index: int | None = attrs.field(default=None, validator=_is_size)
    chunks: int | None = attrs.field(default=None, validator=_is_size)
    keep_going: bool = False

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
        """Build a job from a row of the ``import_job`` table, column by column.

        The row is trusted: the table's constraints hold what the validators
        check, so they are not run again (this is on every read's path).
        Values are still mapped to their types (statuses to members).
        """
        return job_from_values([row[name] for name in COLUMNS])


@attrs.frozen
class Chunk:
    """One piece of a chunked import: its rows, and the application's description of it.

    ``spec`` is any JSON value of at most 8 KiB (a row range, a byte range,
    a page token), stored on the chunk's job as ``ImportJob.chunk``.
    """

    total_rows: int = attrs.field(validator=_is_count)
    spec: Any = attrs.field(default=None, validator=_is_chunk)


@attrs.frozen(kw_only=True)
class ErrorGroup:
    """How many of a job's error entries share one reason: a ``type``, ``field`` and ``message``.

    Counts are exact over every entry ever recorded for the job, those past
    ``max_errors`` and ``error_log_limit`` included. An entry without one of
    the three groups under None there. A job keeps at most
    `importjob.repository.MAX_ERROR_GROUPS` groups; entries of any group
    past those count in one group with ``other`` true (and the three None).
    """

    type: str | None
    field: str | None
    message: str | None
    count: int = attrs.field(validator=_is_count)
    other: bool = False


class LoggedError(NamedTuple):
    """One entry of a job's error log, with ``n``, its place in recording order (from 1)."""

    # A tuple, not an attrs class: a page builds one per entry, and
    # iter_errors reads every page of a log of any size through them.
    n: int
    entry: dict[str, Any]


@attrs.frozen(kw_only=True)
class ErrorPage:
    """One keyset page of a job's error log (`ImportJobRepository.error_page`).

    ``entries`` come in recording order. ``next_after`` is the ``after`` that
    reads the next page: the ``n`` of this page's last entry when the page
    is full (the next one may still be empty), None when the log ends here.
    """

    entries: tuple[LoggedError, ...]
    next_after: int | None = attrs.field(
        validator=attrs.validators.optional(attrs.validators.instance_of(int))
    )


_total = attrs.validators.and_(attrs.validators.instance_of(int), attrs.validators.ge(0))


@attrs.frozen(kw_only=True)
class StatusMetrics:
    """What `ImportJobRepository.job_metrics` counts over the jobs of one status.

    ``jobs`` in the status; the sums of their ``processed_rows`` and of
    their ``error_count`` (``failed_rows``) and of their ``skipped_count``
    (``skipped_rows``); the age in seconds of the
    oldest by ``created_at`` (None when no job is in the status); and
    ``without_heartbeat``, how many live jobs have shown no life (a
    heartbeat, else their start) for the ``stale_after`` asked: for
    PROCESSING, the jobs whose worker may be lost (0 for the ended statuses).
    """

    status: ImportJobStatus = attrs.field(converter=_to_status)
    jobs: int = attrs.field(validator=_is_count)
    processed_rows: int = attrs.field(validator=_total)
    failed_rows: int = attrs.field(validator=_total)
    skipped_rows: int = attrs.field(validator=_total)
    oldest_age_seconds: float | None
    without_heartbeat: int = attrs.field(validator=_is_count)


#: The ``import_job`` columns every statement returning jobs selects, in this
#: order: the model's fields.
COLUMNS: tuple[str, ...] = tuple(field.name for field in attrs.fields(ImportJob))


# The slots' own setters: a frozen attrs class refuses setattr, and these are
# what its generated __init__ writes through too, minus the checks.
(
    _set_id,
    _set_status,
    _set_source_type,
    _set_filename,
    _set_total_rows,
    _set_processed_rows,
    _set_success_count,
    _set_error_count,
    _set_errors,
    _set_started_at,
    _set_completed_at,
    _set_created_at,
    _set_updated_at,
    _set_heartbeat_at,
    _set_worker_id,
    _set_errors_dropped,
    _set_errors_logged,
    _set_checkpoint,
    _set_source_sha256,
    _set_source_size,
    _set_owner,
    _set_metadata,
    _set_skipped_count,
    _set_outcomes,
    _set_parent_id,
    _set_chunk,
    _set_chunk_index,
    _set_chunks,
    _set_keep_going,
) = (ImportJob.__dict__[name].__set__ for name in COLUMNS)
_new = object.__new__


# create returns only what the database set or normalized; the values it
# inserted are the job's, copied rather than read back.
_CREATE_INSERTS = tuple(
    (ImportJob.__dict__[name].__get__, ImportJob.__dict__[name].__set__)
    for name in (
        "id",
        "status",
        "source_type",
        "filename",
        "total_rows",
        "processed_rows",
        "success_count",
        "error_count",
        "source_sha256",
        "source_size",
        "owner",
        "skipped_count",
    )
)


def job_as_created(job: ImportJob, stored: Sequence[Any]) -> ImportJob:
    """Return ``job`` as create stored it, trusting both (``job`` is validated).

    The columns create.sql inserts are ``job``'s; ``stored`` holds what the
    database set or normalized, in the order create.sql returns them:
    ``errors``, ``checkpoint`` (as jsonb gives them back), ``created_at`` and
    ``updated_at``. The rest are the table's defaults for a new job.
    """
    created: ImportJob = _new(ImportJob)
    for get, set_ in _CREATE_INSERTS:
        set_(created, get(job))
    _set_errors(created, stored[0])
    _set_checkpoint(created, stored[1])
    _set_metadata(created, stored[2])
    _set_outcomes(created, stored[3])
    _set_created_at(created, stored[4])
    _set_updated_at(created, stored[5])
    _set_started_at(created, None)
    _set_completed_at(created, None)
    _set_heartbeat_at(created, None)
    _set_worker_id(created, None)
    _set_errors_dropped(created, 0)
    _set_errors_logged(created, 0)
    _set_parent_id(created, None)
    _set_chunk(created, None)
    _set_chunk_index(created, None)
    _set_chunks(created, None)
    _set_keep_going(created, False)
    return created


def job_from_values(values: Sequence[Any]) -> ImportJob:
    """Build a job from a row's values in `COLUMNS` order, trusting them.

    The table's constraints hold what the validators check, so they are not
    run again: this is on the path of every read (a psycopg row factory).
    """
    job: ImportJob = _new(ImportJob)
    _set_id(job, values[0])
    _set_status(job, _STATUS_BY_TEXT[values[1]])
    _set_source_type(job, _SOURCE_BY_TEXT[values[2]])
    _set_filename(job, values[3])
    _set_total_rows(job, values[4])
    _set_processed_rows(job, values[5])
    _set_success_count(job, values[6])
    _set_error_count(job, values[7])
    _set_errors(job, values[8])
    _set_started_at(job, values[9])
    _set_completed_at(job, values[10])
    _set_created_at(job, values[11])
    _set_updated_at(job, values[12])
    _set_heartbeat_at(job, values[13])
    _set_worker_id(job, values[14])
    _set_errors_dropped(job, values[15])
    _set_errors_logged(job, values[16])
    _set_checkpoint(job, values[17])
    _set_source_sha256(job, values[18])
    _set_source_size(job, values[19])
    _set_owner(job, values[20])
    _set_metadata(job, values[21])
    _set_skipped_count(job, values[22])
    _set_outcomes(job, values[23])
    _set_parent_id(job, values[24])
    _set_chunk(job, values[25])
    _set_chunk_index(job, values[26])
    _set_chunks(job, values[27])
    _set_keep_going(job, values[28])
    return job
