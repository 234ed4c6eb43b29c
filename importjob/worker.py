"""The worker process: claim jobs as they become pending and run a handler on each.

``importjob worker MODULE:FUNCTION`` runs one; in code::

    def handle(job: ImportJob, t: Tracker) -> None:
        for row in rows_of(job):
            ...
            t.ok()

    importjob.run_worker(handle, "postgresql://...", concurrency=4)

An idle worker waits on ``LISTEN import_job_pending`` (a trigger notifies
when a job becomes pending), so it picks a new job up as its creation
commits and sends no statement while nothing happens; it claims anyway at
least every ``fallback_seconds``, in case a notification was missed (across
a reconnect). Each claimed job runs ``handler(job, tracker)`` inside
`importjob.track`, ``concurrency`` at a time: a function in threads, a
coroutine function as asyncio tasks on one event loop of the worker's (with
an `importjob.AsyncTracker`), each over a connection of its own that is
kept from job to job.

Stopping (`Worker.stop`, or SIGTERM or SIGINT in `run_worker`): no more
claims; each running handler's tracker, at the end of its current row,
flushes and hands its job back to PENDING with its counts and checkpoint
(`ImportJobRepository.release`), for another worker to resume. A handler's
own exception fails its job, as the tracker does, and the worker goes on.
Jobs of lost workers are requeued every ``rescue_after`` by one worker of
the cluster at a time (a transaction-level advisory lock).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import itertools
import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import timedelta
from types import FrameType
from typing import Any, cast

import psycopg

from importjob import _validate
from importjob._queries import queries
from importjob._retry import Backoff, lost_connection
from importjob.exceptions import (
    ImportJobDatabaseError,
    ImportJobReleasedError,
    ImportJobStoppedError,
    InvalidFieldError,
)
from importjob.models import ImportJob
from importjob.repository import ImportJobRepository
from importjob.repository_async import AsyncImportJobRepository
from importjob.tracking import AsyncTracker, Tracker

__all__ = [
    "DEFAULT_FALLBACK_SECONDS",
    "DEFAULT_RESCUE_AFTER",
    "DEFAULT_STOP_TIMEOUT",
    "PENDING_CHANNEL",
    "Handler",
    "Worker",
    "check_handler",
    "run_worker",
]

logger = logging.getLogger("importjob.worker")

#: What a handler is: ``handler(job, tracker)``, a function or a coroutine function.
Handler = (
    Callable[[ImportJob, Tracker], object] | Callable[[ImportJob, AsyncTracker], Awaitable[object]]
)

DEFAULT_STOP_TIMEOUT = 30.0
DEFAULT_RESCUE_AFTER = timedelta(minutes=5)
DEFAULT_FALLBACK_SECONDS = 5.0
#: The channel of sql/ triggers' notifications when a job becomes pending.
PENDING_CHANNEL = "import_job_pending"
# How long the loop waits at a time: how soon it sees a stop or a free slot.
_SLICE = 0.25
# Its sessions, as pg_stat_activity shows them.
_NAME = "importjob worker"
# Runs one claimed job in a slot (a thread, or a task on the worker's loop).
_Start = Callable[[ImportJob], "concurrent.futures.Future[None]"]


def check_handler(handler: object) -> None:
    """Raise `InvalidFieldError` unless ``handler`` can be called as ``handler(job, tracker)``."""
    if not callable(handler):
        raise InvalidFieldError("handler", "must be callable as handler(job, tracker)", handler)
    try:
        inspect.signature(handler).bind(None, None)
    except TypeError as exc:
        raise InvalidFieldError(
            "handler", f"must take two arguments, (job, tracker): {exc}", handler
        ) from exc
    except ValueError:  # pragma: no cover - a builtin without a signature: let it be tried
        pass


class Worker:
    """A worker: claims jobs, runs the handler on each, ``concurrency`` at a time.

    `run` blocks until `stop` is called (from another thread, or a signal
    handler), then waits up to ``stop_timeout`` seconds for the running
    handlers to hand their jobs back. ``tracker_options`` go to each
    job's tracker (``every_rows``, ``max_failures``, ...).
    """

    def __init__(
        self,
        handler: Handler,
        database_url: str,
        *,
        concurrency: int = 1,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        rescue_after: timedelta = DEFAULT_RESCUE_AFTER,
        fallback_seconds: float = DEFAULT_FALLBACK_SECONDS,
        worker_id: str | None = None,
        tracker_options: Mapping[str, Any] | None = None,
    ) -> None:
        check_handler(handler)
        self._handler = handler
        self._is_async = inspect.iscoroutinefunction(handler)
        self._url = database_url
        self.concurrency = _validate.positive("concurrency", concurrency)
        self._stop_timeout = _positive_seconds("stop_timeout", stop_timeout)
        if not isinstance(rescue_after, timedelta) or rescue_after <= timedelta(0):
            raise InvalidFieldError("rescue_after", "must be a positive timedelta", rescue_after)
        self._rescue_after = rescue_after
        self._fallback = _positive_seconds("fallback_seconds", fallback_seconds)
        self.worker_id = _validate.worker_or_current(worker_id)
        self._tracker_options = dict(tracker_options or {})
        self._stopping = threading.Event()
        self._freed = threading.Event()
        self._running: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()
        # Each slot's repository, kept from job to job: the tracker replaces
        # a connection the server dropped (a restart) as it retries. A
        # thread keeps its own; the tasks share the idle ones of the loop.
        self._slot = threading.local()
        self._repos: list[ImportJobRepository] = []
        self._idle_async: list[AsyncImportJobRepository] = []

    @property
    def stopping(self) -> bool:
        """Whether `stop` was called."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop claiming; the running handlers hand their jobs back after their current row."""
        self._stopping.set()

    def run(self) -> bool:
        """Claim and run jobs until stopped; return whether every handler finished in time."""
        with self._tasks() if self._is_async else self._threads() as start:
            self._listen(start)
            _, left = concurrent.futures.wait(self._running, timeout=self._stop_timeout)
            if left:
                logger.warning(
                    "worker %s: %d jobs still running after %.0fs: left to rescue_stale",
                    self.worker_id,
                    len(left),
                    self._stop_timeout,
                )
            return not left

    def _all_done(self) -> bool:
        return all(future.done() for future in self._running)

    @contextlib.contextmanager
    def _threads(self) -> Iterator[_Start]:
        """Run each job's handler in a thread of a pool of ``concurrency``."""
        threads = concurrent.futures.ThreadPoolExecutor(
            self.concurrency, thread_name_prefix="importjob-worker"
        )
        try:
            yield lambda job: threads.submit(self._run_job, job)
        finally:
            threads.shutdown(wait=False, cancel_futures=True)
            if self._all_done():  # else a handler still uses its connection: the process ends it
                for repo in self._repos:
                    repo.connection.close()

    @contextlib.contextmanager
    def _tasks(self) -> Iterator[_Start]:
        """Run each job's coroutine handler as a task of one event loop, in a thread of its own."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name="importjob-worker-loop", daemon=True
        )
        thread.start()
        try:
            yield lambda job: asyncio.run_coroutine_threadsafe(self._run_task(job), loop)
        finally:
            finished = self._all_done()
            if finished:
                asyncio.run_coroutine_threadsafe(self._close_idle(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self._stop_timeout if finished else 0)
            if not thread.is_alive():  # else a task still runs there: the process ends it
                loop.close()

    def _listen(self, start: _Start) -> None:
        # Over a connection lost (a server restart), connect again with a
        # growing delay; the running jobs' trackers retry on their own.
        backoff = Backoff(attempts=sys.maxsize)
        for attempt in itertools.count():
            try:
                with (
                    psycopg.connect(self._url, autocommit=True, application_name=_NAME) as listener,
                    psycopg.connect(self._url, autocommit=True, application_name=_NAME) as claimer,
                ):
                    listener.execute(queries()["worker_listen"])
                    logger.info(
                        "worker %s: %d at a time, listening for pending jobs",
                        self.worker_id,
                        self.concurrency,
                    )
                    self._loop(listener, ImportJobRepository(claimer), start)
                    return
            except (psycopg.OperationalError, ImportJobDatabaseError) as exc:
                wait = backoff.wait(attempt, exc) or backoff.max_delay  # raises unless lost
                reason = str(lost_connection(exc)).strip().splitlines() or ["?"]
                logger.warning(
                    "worker %s: lost the database (%s); again in %.1fs",
                    self.worker_id,
                    reason[0],
                    wait,
                )
                if self._stopping.wait(wait):
                    return

    def _loop(
        self,
        listener: psycopg.Connection[Any],
        repo: ImportJobRepository,
        start: _Start,
    ) -> None:
        claim_due = True  # at start: there may be pending jobs already
        last_claim = 0.0
        rescue_at = time.monotonic() + self._rescue_every()
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= rescue_at:
                self._rescue(repo)
                rescue_at = now + self._rescue_every()
            free = self.concurrency - len(self._running)
            if free and (claim_due or now - last_claim >= self._fallback):
                last_claim = now
                job = repo.claim_next(self.worker_id)
                if job is not None:
                    self._start(job, start)
                    continue  # a backlog: claim again while a slot is free
                claim_due = False
            if free:
                # Idle: wait for a job to become pending; no statement is sent.
                for _ in listener.notifies(timeout=_SLICE, stop_after=1):
                    claim_due = True
                for _ in listener.notifies(timeout=0):  # the rest that came with it
                    pass
            elif self._freed.wait(_SLICE):
                self._freed.clear()
                claim_due = True  # jobs may have become pending while all were busy

    def _rescue_every(self) -> float:
        # Spread out, so that the cluster's workers do not all try at once.
        return self._rescue_after.total_seconds() * random.uniform(0.9, 1.1)  # noqa: S311

    def _rescue(self, repo: ImportJobRepository) -> None:
        # One worker of the cluster at a time: the others find the lock taken.
        with repo.connection.transaction():
            row = repo.connection.execute(queries()["worker_rescue_lock"]).fetchone()
            if row and row[0]:
                for job in repo.rescue_stale(self._rescue_after, requeue=True):
                    logger.warning(
                        "job %s: its worker sent no heartbeat for %s; back to pending",
                        job.id,
                        self._rescue_after,
                    )

    def _start(self, job: ImportJob, start: _Start) -> None:
        future = start(job)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._finished)

    def _finished(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._running.discard(future)
        self._freed.set()

    def _slot_repo(self) -> ImportJobRepository:
        repo: ImportJobRepository | None = getattr(self._slot, "repo", None)
        if repo is not None and not repo.connection.closed:
            return repo
        repo = ImportJobRepository(
            psycopg.connect(self._url, autocommit=True, application_name=_NAME)
        )
        self._slot.repo = repo
        with self._lock:
            self._repos.append(repo)
        return repo

    def _run_job(self, job: ImportJob) -> None:
        began = _began(job)
        tracker: Tracker | None = None
        try:
            tracker = Tracker(self._slot_repo(), job.id, **self._tracker_kwargs(job))
            with tracker:
                cast(Callable[[ImportJob, Tracker], object], self._handler)(job, tracker)
        except Exception as exc:  # the job failed (the tracker marked it); the worker goes on
            _ended(job, began, tracker, exc)
        else:
            _ended(job, began, tracker, None)

    async def _run_task(self, job: ImportJob) -> None:
        handler = cast(Callable[[ImportJob, AsyncTracker], Awaitable[object]], self._handler)
        began = _began(job)
        tracker: AsyncTracker | None = None
        repo: AsyncImportJobRepository | None = None
        try:
            repo = await self._task_repo()
            tracker = AsyncTracker(repo, job.id, **self._tracker_kwargs(job))
            async with tracker:
                await handler(job, tracker)
        except Exception as exc:  # as in _run_job
            _ended(job, began, tracker, exc)
        else:
            _ended(job, began, tracker, None)
        finally:
            if repo is not None:
                self._idle_async.append(repo)

    async def _task_repo(self) -> AsyncImportJobRepository:
        while self._idle_async:
            repo = self._idle_async.pop()
            if not repo.connection.closed:
                return repo
        return AsyncImportJobRepository(
            await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, application_name=_NAME
            )
        )

    async def _close_idle(self) -> None:
        for repo in self._idle_async:
            await repo.connection.close()

    def _tracker_kwargs(self, job: ImportJob) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "stop": self._stopping.is_set,
            "claimed": job,
            **self._tracker_options,
        }


def _began(job: ImportJob) -> float:
    logger.info("job %s started: %s (owner %s)", job.id, job.filename, job.owner or "-")
    return time.monotonic()


def _ended(
    job: ImportJob, began: float, tracker: Tracker | AsyncTracker | None, exc: Exception | None
) -> None:
    if exc is None:
        outcome = "completed"
    elif isinstance(exc, ImportJobReleasedError):
        outcome = "handed back to pending (the worker is stopping)"
    elif isinstance(exc, ImportJobStoppedError):
        outcome = str(exc.status)
    else:
        outcome = f"failed: {type(exc).__name__}: {exc}"
    took = time.monotonic() - began
    rows = tracker.processed_rows if tracker is not None else 0
    logger.info(
        "job %s %s: %d rows in %.1fs (%.1f rows/s), owner %s",
        job.id,
        outcome,
        rows,
        took,
        rows / took if took else 0.0,
        job.owner or "-",
    )


def _positive_seconds(field: str, value: object) -> float:
    seconds = _validate.seconds(field, value)
    if seconds <= 0:
        raise InvalidFieldError(field, "must be more than 0", value)
    return seconds


def run_worker(
    handler: Handler,
    database_url: str,
    *,
    concurrency: int = 1,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    rescue_after: timedelta = DEFAULT_RESCUE_AFTER,
    worker_id: str | None = None,
    **tracker_options: Any,
) -> bool:
    """Run a `Worker` in this thread until SIGTERM or SIGINT; return whether it stopped cleanly.

    The first signal stops it gracefully (see `Worker`); a second one ends
    the process at once, its running jobs left PROCESSING for the rescue.
    Returns False when handlers were still running at ``stop_timeout``.
    """
    worker = Worker(
        handler,
        database_url,
        concurrency=concurrency,
        stop_timeout=stop_timeout,
        rescue_after=rescue_after,
        worker_id=worker_id,
        tracker_options=tracker_options,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if worker.stopping:
            logger.warning("worker %s: stopped at once", worker.worker_id)
            os._exit(128 + signum)
        logger.info("worker %s: stopping (signal %d)", worker.worker_id, signum)
        worker.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return worker.run()
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)
