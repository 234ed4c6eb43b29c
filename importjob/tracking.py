"""Report the progress of a running import into its job row.

::

    with importjob.track(repo, job_id) as t:
        for row in rows:
            try:
                import_one(row)
            except ImportValidationError as exc:
                t.failed(exc)
            else:
                t.ok()

A tracker counts rows in memory and flushes them with one statement
(`ImportJobRepository.advance`) at most every ``every_rows`` rows or
``every_seconds`` seconds, and on exit. Each flush records the worker's
heartbeat and reads back the job's status: when someone else cancelled the
job, the worker gets `ImportJobCancelledError` at its next flush (when the
job ended otherwise, `ImportJobStoppedError`). While rows are slow to come, a
background heartbeat keeps the job from looking lost.

Leaving the block normally completes the job; leaving it on an exception
fails it, with the exception stored as an error entry. Whatever was counted
is flushed first, either way.

Each flush is one numbered batch under a key of the tracker's own
(``advance(batch_id=...)``): when a flush's reply is lost and the batch is
sent again, the job, which applied it already, does not count it twice.

``checkpoint(value)`` records where the import got to; the next flush
stores it in the same statement as the counts of the rows before it. Once a
tracker has a checkpoint, its flushes hold back the rows counted after the
latest one (they are sent with the next checkpoint, or at the end), so the
job's counts and checkpoint always agree: a worker that resumes from the
checkpoint counts no row twice.

``max_failures`` and ``max_failure_rate`` are an error budget, checked
against the job's counts at each flush: past it, the tracker ends the job
FAILED with an ``ErrorBudgetExceededError`` entry and raises that error in
the worker.

``claimed``, the job as `ImportJobRepository.claim_next` returned it to
this worker, saves the statement that would start it.

``stop``, a callable asked after each row (`importjob.Worker` passes its
stopping flag), stops the import early: once it returns True, the tracker
flushes, hands the job back to PENDING with its counts and checkpoint
(`ImportJobRepository.release`) and raises ``ImportJobReleasedError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar
from uuid import UUID

from importjob import _validate
from importjob._repository_base import Advanced, ErrorEntry
from importjob._retry import Backoff, lost_connection
from importjob.exceptions import (
    DataImportError,
    ErrorBudgetExceededError,
    ImportJobCancelledError,
    ImportJobDatabaseError,
    ImportJobReleasedError,
    ImportJobStoppedError,
    InvalidFieldError,
    InvalidStatusTransitionError,
)
from importjob.models import ImportJob, ImportJobStatus
from importjob.repository import ImportJobRepository
from importjob.repository_async import AsyncImportJobRepository

__all__ = ["AsyncTracker", "Tracker", "track", "track_async"]

_T = TypeVar("_T")

DEFAULT_HEARTBEAT_SECONDS = 10.0
# A flush that loses its connection is retried after 0.1 s, then twice as
# long each time up to 2 s, 6 times: about 5 s for the database to come back.
DEFAULT_RETRY = Backoff(attempts=6, delay=0.1, max_delay=2.0)


_Repo = TypeVar("_Repo", ImportJobRepository, AsyncImportJobRepository)


class _TrackerState(Generic[_Repo]):
    """Counting, buffering and deciding when to flush: shared by both trackers.

    Its ``__init__`` is the one place the tracker's options are declared,
    with their defaults; `track` and `track_async` are the two trackers.
    """

    def __init__(
        self,
        repo: _Repo,
        job_id: UUID | str,
        every_rows: int = 1000,
        every_seconds: float = 1.0,
        *,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        worker_id: str | None = None,
        retry_attempts: int = DEFAULT_RETRY.attempts,
        retry_delay: float = DEFAULT_RETRY.delay,
        retry_max_delay: float = DEFAULT_RETRY.max_delay,
        max_failures: int | None = None,
        max_failure_rate: float | None = None,
        min_rows: int = 100,
        stop: Callable[[], bool] | None = None,
        claimed: ImportJob | None = None,
    ) -> None:
        self._repo: _Repo = repo
        self.job_id = _validate.job_id(job_id)
        self._retry = Backoff(
            attempts=_validate.count("retry_attempts", retry_attempts),
            delay=_validate.seconds("retry_delay", retry_delay),
            max_delay=_validate.seconds("retry_max_delay", retry_max_delay),
        )
        self.worker_id = _validate.worker_or_current(worker_id)
        self._every_rows = _validate.positive("every_rows", every_rows)
        self._every_seconds = _validate.seconds("every_seconds", every_seconds)
        self._heartbeat_seconds = _validate.seconds("heartbeat_seconds", heartbeat_seconds)
        if self._heartbeat_seconds == 0:
            raise InvalidFieldError("heartbeat_seconds", "must be more than 0", heartbeat_seconds)
        self._max_failures = (
            None if max_failures is None else _validate.count("max_failures", max_failures)
        )
        self._max_failure_rate = (
            None
            if max_failure_rate is None
            else _validate.rate("max_failure_rate", max_failure_rate)
        )
        self._min_rows = _validate.count("min_rows", min_rows)
        if stop is not None and not callable(stop):
            raise InvalidFieldError("stop", "must be a callable returning True to stop", stop)
        # Asked after each row: True hands the job back (a worker stopping).
        self._stop_asked = stop
        if claimed is not None and (
            claimed.id != self.job_id
            or claimed.status is not ImportJobStatus.PROCESSING
            or claimed.worker_id != self.worker_id
        ):
            raise InvalidFieldError(
                "claimed", "must be this job as claim_next gave it to this worker", claimed
            )
        # A job this worker claimed is its own already: no start to send.
        self._claimed = claimed
        # Every entry goes to the job's error log (up to its limit): the
        # buffer keeps as many as the log could take.
        self._max_entries = repo.error_log_limit
        # Counted since the last batch was made.
        self._rows = 0
        self._success = 0
        self._errors = 0
        self._skipped = 0
        self._outcomes: dict[str, int] = {}
        self._entries: list[dict[str, Any]] = []
        self._entries_dropped = 0
        # Flush when this many rows are counted and not yet in a batch.
        self._flush_rows = self._every_rows
        # Checkpoints: once there is one, a batch takes the rows counted up
        # to the latest (the mark: rows, success, errors, skipped, entries,
        # dropped, outcomes); those after it wait. A checkpoint not yet in a
        # batch is _checkpoint.
        self._holding = False
        self._mark: tuple[int, int, int, int, int, int, dict[str, int]] | None = None
        self._checkpoint: str | None = None
        # The last batches: everything counted goes (the import ends); and
        # failing (an exception, or past the budget): no budget is checked.
        self._final = False
        self._failing = False
        #: The chunked import this tracker's chunk ended, once its end did:
        #: of a parent's chunks exactly one ends it, and only its tracker has it.
        self.ended_import: ImportJob | None = None
        self._started: ImportJob | None = None
        # A batch sent and not acknowledged (its flush failed): sent again,
        # unchanged and with its number, before anything newer, so that the
        # job applies it once whether or not the first try reached it.
        self._pending: dict[str, Any] | None = None
        self._batch_key = secrets.token_hex(8)
        self._batch_number = 0
        # Acknowledged by the job.
        self._flushed_rows = 0
        self._flushed_success = 0
        self._flushed_errors = 0
        self._flushed_skipped = 0
        # Outcome labels checked already: a loop names the same few again.
        self._labels: set[str] = set()
        self._last_flush = time.monotonic()
        self._deadline = self._last_flush + self._every_seconds

    # Named as the job's fields they add to.

    @property
    def processed_rows(self) -> int:
        """Return the rows counted so far, flushed or not."""
        return self._flushed_rows + self.unflushed

    @property
    def success_count(self) -> int:
        """Return the rows counted as imported so far."""
        return self._flushed_success + self._success + self._sent("success")

    @property
    def error_count(self) -> int:
        """Return the rows counted as failed so far."""
        return self._flushed_errors + self._errors + self._sent("errors")

    @property
    def skipped_count(self) -> int:
        """Return the rows counted as skipped so far."""
        return self._flushed_skipped + self._skipped + self._sent("skipped")

    @property
    def unflushed(self) -> int:
        """Return the rows counted and not yet acknowledged by the job."""
        return self._rows + self._sent("processed")

    def _sent(self, counter: str) -> int:
        return 0 if self._pending is None else int(self._pending[counter])

    def _count_ok(self, n: int, outcome: str | None) -> bool:
        # The hot path: a few integer additions and a clock read.
        if type(n) is not int or not 0 <= n <= _validate.MAX_COUNT:
            _validate.count("n", n)
        if outcome is not None:
            self._count_outcome(outcome, n)
        self._success += n
        self._rows += n
        return self._rows >= self._flush_rows or time.monotonic() >= self._deadline

    def _count_outcome(self, outcome: str, n: int, field: str = "outcome") -> None:
        if outcome not in self._labels:
            self._labels.add(_validate.label(outcome, field))
        self._outcomes[outcome] = self._outcomes.get(outcome, 0) + n

    def _count_skipped(self, reason: object) -> bool:
        if isinstance(reason, str):
            self._count_outcome(reason, 1, "reason")
        elif isinstance(reason, BaseException):
            label = getattr(reason, "label", None) or type(reason).__name__
            self._count_outcome(label[: _validate.MAX_LABEL_LENGTH], 1, "reason")
            self._keep({**_exception_entry(reason), "skipped": True})
        else:
            raise InvalidFieldError("reason", "must be a label or an exception", reason)
        self._skipped += 1
        self._rows += 1
        return self._rows >= self._flush_rows or time.monotonic() >= self._deadline

    def _count_failed(self, error: ErrorEntry) -> bool:
        entry = _entry(error)
        self._errors += 1
        self._rows += 1
        self._keep(entry)
        return self._rows >= self._flush_rows or time.monotonic() >= self._deadline

    def checkpoint(self, value: Any) -> None:
        """Record that the rows counted so far bring the import to ``value``.

        ``value`` is any JSON value of at most 8 KiB of JSON (a row number, a
        byte offset, a page token; None clears the job's). The next flush
        stores it with the counts of those rows, in one statement; rows
        counted after it wait for the next checkpoint or the end. A job
        resumed (``rescue_stale(requeue=True)``, then ``claim_next``) shows it
        in ``job.checkpoint``: start there. Raises `InvalidFieldError`
        naming ``checkpoint`` for a value that is not JSON or too big.
        """
        self._checkpoint = _validate.checkpoint(value)
        self._holding = True
        self._mark = (
            self._rows,
            self._success,
            self._errors,
            self._skipped,
            len(self._entries),
            self._entries_dropped,
            dict(self._outcomes),
        )

    def _keep(self, entry: dict[str, Any]) -> None:
        # A job logs at most error_log_limit entries: more in the buffer could never be stored.
        if self._max_entries is None or len(self._entries) < self._max_entries:
            self._entries.append(entry)
        else:
            self._entries_dropped += 1

    def _batches(self) -> Iterator[dict[str, Any]]:
        """Yield the `advance` arguments a flush sends, oldest first.

        The caller calls `_acked` after each batch the job took, before asking
        for the next; a batch it could not send stays pending.
        """
        if self._pending is not None:
            yield self._pending
        self._batch_number += 1
        if self._final or not self._holding:
            rows, success, errors, skipped = self._rows, self._success, self._errors, self._skipped
            kept, dropped = len(self._entries), self._entries_dropped
            outcomes, self._outcomes = self._outcomes, {}
        else:
            rows, success, errors, skipped, kept, dropped, outcomes = self._mark or (
                0,
                0,
                0,
                0,
                0,
                0,
                {},
            )
            for label, n in outcomes.items():
                left = self._outcomes[label] - n
                if left:
                    self._outcomes[label] = left
                else:
                    del self._outcomes[label]
        batch: dict[str, Any] = {
            "processed": rows,
            "success": success,
            "errors": errors,
            "skipped": skipped,
            "outcomes": outcomes,
            "entries": self._entries[:kept],
            "entries_dropped": dropped,
            "worker_id": self.worker_id,
            "batch_id": (self._batch_key, self._batch_number),
        }
        if self._mark is not None:
            batch["checkpoint"] = self._checkpoint
        self._pending = batch
        self._rows -= rows
        self._success -= success
        self._errors -= errors
        self._skipped -= skipped
        self._entries_dropped -= dropped
        self._entries = self._entries[kept:]
        self._mark = None
        self._flush_rows = self._rows + self._every_rows
        yield batch

    def _unsent(self) -> bool:
        """Whether a flush would carry anything: rows, entries, a checkpoint, a batch to resend."""
        return bool(
            self._pending is not None
            or self._mark is not None
            or self._rows
            or self._entries
            or self._entries_dropped
        )

    def _acked(self, batch: dict[str, Any]) -> None:
        # Only once the statement succeeded: a failed flush loses nothing.
        self._flushed_rows += batch["processed"]
        self._flushed_success += batch["success"]
        self._flushed_errors += batch["errors"]
        self._flushed_skipped += batch["skipped"]
        self._pending = None

    def _flushed(self, job: Advanced) -> ErrorBudgetExceededError | None:
        """Raise when the job ended elsewhere; return the error when it is over budget."""
        self._last_flush = time.monotonic()
        self._deadline = self._last_flush + self._every_seconds
        if job.status.is_terminal:
            raise _stopped(self.job_id, job.status)
        if self._failing:
            return None  # failing already: no budget to keep
        failed, rows = job.error_count, job.processed_rows
        if self._max_failures is not None and failed > self._max_failures:
            return ErrorBudgetExceededError(
                self.job_id, "max_failures", self._max_failures, failed, rows
            )
        rate = self._max_failure_rate
        if rate is not None and rows >= self._min_rows and rows and failed / rows > rate:
            return ErrorBudgetExceededError(self.job_id, "max_failure_rate", rate, failed, rows)
        return None

    def _heartbeat_due(self) -> bool:
        return time.monotonic() - self._last_flush >= self._heartbeat_seconds

    def _heard(self, status: ImportJobStatus) -> None:
        if status.is_terminal:
            # Make the worker's next ok() or failed() flush, see the status and stop.
            self._deadline = 0.0

    def _retry_after(self, attempt: int, exc: DataImportError) -> float:
        """Return how long to wait before retrying, or raise when not to retry."""
        wait = self._retry.wait(attempt, exc)
        if wait is None:
            entries = len(self._entries) + (
                0 if self._pending is None else len(self._pending["entries"])
            )
            raise ImportJobDatabaseError(
                f"import job {self.job_id}: the database stayed out of reach through "
                f"{attempt} retries; {self.unflushed} rows and {entries} error "
                f"entries were not flushed (all before them were): {lost_connection(exc)}"
            ) from exc
        return wait

    def _failure(self, exc: BaseException) -> None:
        # The exception that ended the import: an entry, not a failed row.
        # From now on the job is failing: its budget no longer matters.
        self._failing = True
        self._keep(_exception_entry(exc))


def _exception_entry(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, DataImportError):
        return _entry(exc)
    return {"type": type(exc).__name__, "message": str(exc)[:1000]}


def _entry(error: object) -> dict[str, Any]:
    if isinstance(error, DataImportError):
        error = error.to_dict()
    return _validate.error_entry(error, "error")


def _ended(job_id: UUID, lost: InvalidStatusTransitionError, target: ImportJobStatus) -> None:
    # The job was already ended: by an earlier try of ours whose reply was
    # lost (done, then), or by someone else between the last flush and now.
    if lost.from_status != target:
        raise _stopped(job_id, ImportJobStatus(lost.from_status)) from lost


def _stopped(job_id: UUID, status: ImportJobStatus) -> ImportJobStoppedError:
    if status is ImportJobStatus.CANCELLED:
        return ImportJobCancelledError(job_id)
    return ImportJobStoppedError(job_id, status)


class Tracker(_TrackerState[ImportJobRepository]):
    """Track one running import over an `ImportJobRepository`; ``track(repo, job_id, ...)``.

    Use it as a context manager from one thread. Give it a connection of its
    own: the idle heartbeat runs on that connection from a background thread.

    On entry a PENDING job becomes PROCESSING (a PROCESSING one, claimed
    with `ImportJobRepository.claim_next`, stays so) with this worker
    recorded; ``worker_id`` defaults to this process's identity.
    """

    _beater: threading.Thread | None = None
    _stop: threading.Event

    def ok(self, n: int = 1, outcome: str | None = None) -> None:
        """Count ``n`` rows imported; flush when due.

        ``outcome`` optionally says how, with a label of the application's
        (``"created"``, ``"updated"``; 1 to 64 characters), counted in the
        job's ``outcomes``. Raises `ImportJobCancelledError` (or
        `ImportJobStoppedError`) when a flush finds the job ended by
        someone else.
        """
        if self._count_ok(n, outcome) or (self._stop_asked is not None and self._stop_asked()):
            self.flush()

    def skipped(self, reason: str | BaseException) -> None:
        """Count one row deliberately not imported (no failure); flush when due.

        ``reason`` is a label (``"duplicate"``) or an exception, whose
        ``label`` (`DuplicateDetectedError`: ``"duplicate"``), else its
        type's name, is the label; the row counts in ``skipped_count`` and
        under its label in ``outcomes``. An exception is kept as an entry
        of the job's error log, as a failure's is, marked ``"skipped":
        true``, so a person can see which rows were duplicates of what.
        """
        if self._count_skipped(reason) or (self._stop_asked is not None and self._stop_asked()):
            self.flush()

    def failed(self, error: ErrorEntry) -> None:
        """Count one failed row and keep its error entry; flush when due.

        ``error`` is an import exception or a JSON-serializable dict.
        """
        if self._count_failed(error) or (self._stop_asked is not None and self._stop_asked()):
            self.flush()

    def flush(self) -> None:
        """Write the counts and error entries gathered since the last flush, in one statement.

        When the connection is lost (a server restart), nothing is dropped:
        the same batch is retried on a new connection with a growing delay
        (``retry_attempts``, ``retry_delay``, ``retry_max_delay``); past the
        last retry it raises `ImportJobDatabaseError` saying what was not
        flushed.
        """
        over = self._flushed(self._send())
        if over is not None:
            # Past the error budget: the job ends FAILED with the reason,
            # everything counted flushed first; the worker gets the error.
            self._failure(over)
            self._final = True
            self._flushed(self._send())
            try:
                self._call(lambda: self._repo.update_status(self.job_id, ImportJobStatus.FAILED))
            except InvalidStatusTransitionError as lost:
                _ended(self.job_id, lost, ImportJobStatus.FAILED)
            self._tell()
            raise over
        if self._stop_asked is not None and not self._final and self._stop_asked():
            # The worker is stopping: the job goes back to PENDING as flushed
            # (rows past the last checkpoint are the next worker's to do).
            self._final = True
            self._call(lambda: self._repo.release(self.job_id, self.worker_id))
            raise ImportJobReleasedError(self.job_id)

    def _send(self) -> Advanced:
        for batch in self._batches():
            job = self._call(functools.partial(self._repo._flush, self.job_id, **batch))
            self._acked(batch)
        return job

    def _call(self, call: Callable[[], _T]) -> _T:
        for attempt in itertools.count():
            try:
                return call()
            except ImportJobDatabaseError as exc:
                time.sleep(self._retry_after(attempt, exc))
                with contextlib.suppress(ImportJobDatabaseError):  # the next try says
                    self._repo.reconnect()
        raise AssertionError("unreachable")  # pragma: no cover

    def __enter__(self) -> Tracker:
        self._started = self._claimed or self._repo.start(self.job_id, self.worker_id)
        self._start_beating()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop_beating()
        self._final = True
        if exc is None:
            # Nothing counted since the last flush: the end is the one statement.
            if self._unsent():
                self.flush()
            try:
                self._call(lambda: self._repo.update_status(self.job_id, ImportJobStatus.COMPLETED))
            except InvalidStatusTransitionError as lost:
                _ended(self.job_id, lost, ImportJobStatus.COMPLETED)
            self._tell()
        elif not isinstance(exc, ImportJobStoppedError):
            self._failure(exc)
            try:
                self.flush()
                self._call(lambda: self._repo.update_status(self.job_id, ImportJobStatus.FAILED))
                self._tell()
            except DataImportError as cleanup:
                # The import's own exception goes on; say why the job may not show it.
                exc.add_note(f"importjob: the job could not be marked failed: {cleanup}")

    def _tell(self) -> None:
        # A chunk ended: did its end end the chunked import? (read once)
        started = self._started
        if started is not None and started.parent_id is not None:
            self.ended_import = self._call(lambda: self._repo.ended_import(started))

    # The idle heartbeat: a thread here, a task in the asyncio twin.

    def _start_beating(self) -> None:
        self._stop = threading.Event()
        self._beater = threading.Thread(
            target=self._beat, name=f"importjob-heartbeat-{self.job_id}", daemon=True
        )
        self._beater.start()

    def _stop_beating(self) -> None:
        self._stop.set()
        if self._beater is not None:
            self._beater.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_seconds / 4):
            if self._heartbeat_due():
                with contextlib.suppress(DataImportError):  # the next flush will say
                    self._heard(self._repo.heartbeat(self.job_id, self.worker_id))


class AsyncTracker(_TrackerState[AsyncImportJobRepository]):
    """The asyncio twin of `Tracker`; ``track_async(repo, job_id, ...)``.

    ``ok``, ``failed`` and ``flush`` are coroutines; the idle heartbeat is a
    task on the running loop.
    """

    _beater: asyncio.Task[None] | None = None

    async def ok(self, n: int = 1, outcome: str | None = None) -> None:
        """Count ``n`` rows imported; flush when due. See `Tracker.ok`."""
        if self._count_ok(n, outcome) or (self._stop_asked is not None and self._stop_asked()):
            await self.flush()

    async def skipped(self, reason: str | BaseException) -> None:
        """Count one row deliberately not imported. See `Tracker.skipped`."""
        if self._count_skipped(reason) or (self._stop_asked is not None and self._stop_asked()):
            await self.flush()

    async def failed(self, error: ErrorEntry) -> None:
        """Count one failed row and keep its error entry. See `Tracker.failed`."""
        if self._count_failed(error) or (self._stop_asked is not None and self._stop_asked()):
            await self.flush()

    async def flush(self) -> None:
        """Write what was gathered since the last flush. See `Tracker.flush`."""
        over = self._flushed(await self._send())
        if over is not None:
            self._failure(over)
            self._final = True
            self._flushed(await self._send())
            try:
                await self._call(
                    lambda: self._repo.update_status(self.job_id, ImportJobStatus.FAILED)
                )
            except InvalidStatusTransitionError as lost:
                _ended(self.job_id, lost, ImportJobStatus.FAILED)
            await self._tell()
            raise over
        if self._stop_asked is not None and not self._final and self._stop_asked():
            self._final = True
            await self._call(lambda: self._repo.release(self.job_id, self.worker_id))
            raise ImportJobReleasedError(self.job_id)

    async def _send(self) -> Advanced:
        for batch in self._batches():
            job = await self._call(functools.partial(self._repo._flush, self.job_id, **batch))
            self._acked(batch)
        return job

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        for attempt in itertools.count():
            try:
                return await call()
            except ImportJobDatabaseError as exc:
                await asyncio.sleep(self._retry_after(attempt, exc))
                with contextlib.suppress(ImportJobDatabaseError):
                    await self._repo.reconnect()
        raise AssertionError("unreachable")  # pragma: no cover

    async def __aenter__(self) -> AsyncTracker:
        self._started = self._claimed or await self._repo.start(self.job_id, self.worker_id)
        self._start_beating()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop_beating()
        self._final = True
        if exc is None:
            if self._unsent():
                await self.flush()
            try:
                await self._call(
                    lambda: self._repo.update_status(self.job_id, ImportJobStatus.COMPLETED)
                )
            except InvalidStatusTransitionError as lost:
                _ended(self.job_id, lost, ImportJobStatus.COMPLETED)
            await self._tell()
        elif not isinstance(exc, ImportJobStoppedError):
            self._failure(exc)
            try:
                await self.flush()
                await self._call(
                    lambda: self._repo.update_status(self.job_id, ImportJobStatus.FAILED)
                )
                await self._tell()
            except DataImportError as cleanup:
                exc.add_note(f"importjob: the job could not be marked failed: {cleanup}")

    async def _tell(self) -> None:
        started = self._started
        if started is not None and started.parent_id is not None:
            self.ended_import = await self._call(lambda: self._repo.ended_import(started))

    def _start_beating(self) -> None:
        self._beater = asyncio.create_task(self._beat(), name=f"importjob-heartbeat-{self.job_id}")

    async def _stop_beating(self) -> None:
        if self._beater is not None:
            self._beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beater

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_seconds / 4)
            if self._heartbeat_due():
                with contextlib.suppress(DataImportError):
                    self._heard(await self._repo.heartbeat(self.job_id, self.worker_id))


# The names the README uses: a tracker is made by calling its class.
track = Tracker
track_async = AsyncTracker
