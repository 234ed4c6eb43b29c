"""One LISTEN connection per server process, fanning each job's snapshots out.

Every subscriber (an SSE stream, the job list's stream) asks the
`Listener` for jobs; the listener LISTENs once per job on its one
connection, marks the job watched and reads it through a pooled
connection's repository with the statements and timing of `repo.watch`
(`importjob._watch.WatchState`: mark on the first read and every
`REFRESH_SECONDS`, read at least every `FALLBACK_SECONDS` without a
notification), and hands each snapshot to every subscriber of the job.
So 500 browsers on one job cost one LISTEN and one read per change, not
500.

The jobs list hears of new jobs the same way: while a list's stream waits
for them (`new_jobs`), the connection LISTENs on ``import_job_pending``
(every created job is pending) and wakes each waiting stream once per
burst of notifications; the stream reads what its user sees itself.

A snapshot carries the job's top reasons for failure too, read in the
same pool checkout when its error count has changed: at most once every
`REASONS_SECONDS` per job while errors grow, and always for the last
snapshot, so a page's reasons keep up without a read per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import attrs
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from importjob._job_json import job_json
from importjob._queries import queries
from importjob._watch import Followed, channel_statement
from importjob.exceptions import DataImportError, ImportJobNotFoundError
from importjob.models import ErrorGroup, ImportJob
from importjob.repository_async import AsyncImportJobRepository
from importjob.web._pooled import pooled_repository

_log = logging.getLogger("importjob.web")

# How many reasons a snapshot carries, and how often they are read while errors grow.
SHOWN_REASONS = 10
REASONS_SECONDS = 2.0


@attrs.frozen
class Snapshot:
    """A job as read for its subscribers, with its top reasons for failure (None: not read).

    ``data`` is its JSON (`importjob._job_json.job_json`, elapsed time and
    rate as of the read), encoded once for every subscriber: 500 streams
    on a job cost one encoding per change, not 500.
    """

    job: ImportJob
    reasons: tuple[ErrorGroup, ...] | None
    data: str

    @classmethod
    def of(cls, job: ImportJob, reasons: tuple[ErrorGroup, ...] | None) -> Snapshot:
        """Return the snapshot of ``job`` read now, its JSON encoded."""
        return cls(job, reasons, json.dumps(job_json(job, datetime.now(UTC), reasons)))


# What the schema's import_job_pending_notify notifies when a job becomes pending.
PENDING_CHANNEL = "import_job_pending"
# What an inbox holds for a job: its newest snapshot, or why there is none.
Delivery = Snapshot | DataImportError
# The listener reconnects after 0.1 s, then twice as long each time, at most
# every 2 s, for as long as the server runs: browsers wait, they never fail.
_RETRY_FIRST, _RETRY_MOST = 0.1, 2.0


class Inbox:
    """What one subscriber has not read yet: each job's newest snapshot.

    A slow reader gets the latest state, never a queue of stale ones.
    """

    def __init__(self) -> None:
        self._pending: dict[uuid.UUID, Delivery] = {}
        self._ready = asyncio.Event()

    def put(self, job_id: uuid.UUID, delivery: Delivery) -> None:
        """Replace what waits for ``job_id`` and wake the reader."""
        self._pending[job_id] = delivery
        self._ready.set()

    async def take(self) -> dict[uuid.UUID, Delivery]:
        """Wait for a delivery; return every job's newest and empty the inbox."""
        await self._ready.wait()
        self._ready.clear()
        taken, self._pending = self._pending, {}
        return taken


class _Channel(Followed):
    """One listened job, with its subscribers and its newest snapshot."""

    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(job_id)
        self.inboxes: set[Inbox] = set()
        self.last: Delivery | None = None
        self.reading = False
        self.again = False  # notified during a read: read once more after it
        self.reasons: tuple[ErrorGroup, ...] | None = None
        self.reasons_count = -1  # the error count the reasons were read at
        self.reasons_at = -math.inf

    def reasons_due(self, job: ImportJob) -> bool:
        """Return whether this snapshot of the job should carry fresh reasons."""
        if job.error_count == self.reasons_count:
            return False
        return job.is_finished or time.monotonic() >= self.reasons_at + REASONS_SECONDS


class Listener:
    """The server's one listening connection and its subscribers.

    ``connect`` holds the connection's parameters (``conninfo`` and the
    like); reads go through ``pool``. Start it with `start`, end it with
    `close`.
    """

    def __init__(self, connect: dict[str, Any], pool: AsyncConnectionPool[Any]) -> None:
        self._connect = {
            **connect,
            "autocommit": True,
            "application_name": "importjob serve listener",
        }
        self._pool = pool
        self._channels: dict[uuid.UUID, _Channel] = {}
        self._by_name: dict[str, _Channel] = {}
        self._new_jobs: set[asyncio.Event] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reads: set[asyncio.Task[None]] = set()
        self.connected = False
        self.listening = 0  # jobs LISTENed to on the connection now
        self.reads = 0  # statements run for subscribers, for the tests and the benchmark

    @property
    def followed(self) -> int:
        """Return how many jobs have subscribers now."""
        return len(self._channels)

    def start(self) -> None:
        """Start listening, in a task of the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop listening and close the connection."""
        for task in (self._task, *self._reads):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    @contextlib.asynccontextmanager
    async def subscribe(self, inbox: Inbox, job_ids: list[uuid.UUID]) -> AsyncIterator[Inbox]:
        """Deliver the snapshots of ``job_ids`` to ``inbox`` for the duration of the block.

        A job already followed delivers its newest snapshot at once; a new
        one is listened to, marked and read first.
        """
        for job_id in job_ids:
            channel = self._channels.get(job_id)
            if channel is None:
                channel = self._channels[job_id] = _Channel(job_id)
                self._by_name[f"import_job_{job_id.hex}"] = channel
            channel.inboxes.add(inbox)
            if channel.last is not None:
                inbox.put(job_id, channel.last)
        self._wake.set()
        try:
            yield inbox
        finally:
            for job_id in job_ids:
                channel = self._channels[job_id]
                channel.inboxes.discard(inbox)
                if not channel.inboxes:
                    # The listener loop UNLISTENs it; its mark lapses by itself.
                    del self._channels[job_id]
            self._wake.set()

    @contextlib.asynccontextmanager
    async def new_jobs(self) -> AsyncIterator[asyncio.Event]:
        """Set the event yielded at each burst of new pending jobs, for the duration of the block.

        It is set once the connection listens too (and again after a
        reconnection): a job created before that is read then, not missed.
        """
        woken = asyncio.Event()
        self._new_jobs.add(woken)
        self._wake.set()
        try:
            yield woken
        finally:
            self._new_jobs.discard(woken)
            self._wake.set()

    def _wake_new_jobs(self) -> None:
        for woken in self._new_jobs:
            woken.set()

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(**self._connect) as conn:
                    self.connected, attempt = True, 0
                    await self._listen_loop(conn)
            except psycopg.OperationalError as exc:
                self.connected = False
                wait = min(_RETRY_MOST, _RETRY_FIRST * 2**attempt)
                _log.warning(
                    "listener: lost the database (%s); again in %.1f s", type(exc).__name__, wait
                )
                await asyncio.sleep(wait)
                attempt += 1

    async def _listen_loop(self, conn: psycopg.AsyncConnection[Any]) -> None:
        listened: set[uuid.UUID] = set()
        for channel in self._channels.values():  # a new connection listens to nothing yet
            channel.listening = False
        # Only while a list waits for new jobs: else every job created would
        # queue a notification for this connection that nobody reads.
        pending = False
        while True:
            if bool(self._new_jobs) != pending:
                pending = not pending
                await conn.execute(queries()["worker_listen" if pending else "pending_unlisten"])
                if pending:
                    self._wake_new_jobs()
            for job_id in listened - self._channels.keys():
                await conn.execute(channel_statement("unlisten", job_id))
                listened.discard(job_id)
                self._by_name.pop(f"import_job_{job_id.hex}", None)
            for job_id, channel in list(self._channels.items()):
                if not channel.listening:
                    # LISTEN before the mark: a change after the mark notifies us.
                    await conn.execute(channel_statement("listen", job_id))
                    listened.add(job_id)
                    self._by_name[f"import_job_{job_id.hex}"] = channel
                    channel.listening = True
                    channel.state.connected()
                    channel.due = 0.0
            self.listening = len(listened)
            now = time.monotonic()
            for channel in self._channels.values():
                if channel.listening and channel.due <= now and not channel.reading:
                    self._read_soon(channel)
            idle = [c.due for c in self._channels.values() if c.listening and not c.reading]
            soonest = min(idle, default=math.inf)
            timeout = None if soonest == math.inf else max(0.0, soonest - now)
            for name in await self._wait(conn, timeout):
                if name == PENDING_CHANNEL:
                    self._wake_new_jobs()
                    continue
                notified = self._by_name.get(name)
                if notified is not None:
                    notified.due = 0.0
                    notified.again = notified.reading

    async def _wait(self, conn: psycopg.AsyncConnection[Any], timeout: float | None) -> set[str]:
        """Return the channels notified within ``timeout`` s, or none when woken first."""
        names: set[str] = set()

        async def take() -> None:
            # The first notification, then those queued behind it: one read for a burst.
            async for notify in conn.notifies(timeout=timeout, stop_after=1):
                names.add(notify.channel)
            async for notify in conn.notifies(timeout=0):
                names.add(notify.channel)

        waiting = asyncio.ensure_future(take())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiting, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also when the listener itself is cancelled: the wait must let go
            # of the connection before the connection can close.
            for task in (waiting, woken):
                if not task.done():
                    # A cancelled wait for notifications leaves the idle connection as it was.
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        self._wake.clear()
        if waiting.done() and not waiting.cancelled():
            waiting.result()  # a lost connection raises here
        return names

    def _read_soon(self, channel: _Channel) -> None:
        channel.reading = True
        task = asyncio.get_running_loop().create_task(self._read(channel))
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)

    async def _read(self, channel: _Channel) -> None:
        state = channel.state
        try:
            while True:
                channel.again = False
                self.reads += 1
                try:
                    async with pooled_repository(self._pool) as repo:
                        job = await repo._watch_read(state)
                        if job is not None and channel.reasons_due(job):
                            self.reads += 1
                            await self._read_reasons(repo, channel, job)
                except ImportJobNotFoundError as exc:  # no such job, or deleted
                    self._deliver(channel, exc)
                    return
                except (DataImportError, psycopg.Error, PoolTimeout) as exc:
                    # The database is away: the subscribers wait, the read comes again.
                    _log.warning("listener: a read failed (%s); again soon", type(exc).__name__)
                    channel.due = time.monotonic() + _RETRY_MOST
                    return
                if job is not None:
                    self._deliver(channel, Snapshot.of(job, channel.reasons))
                if not channel.again:
                    channel.due = time.monotonic() + state.wait_seconds()
                    return
        finally:
            channel.reading = False
            self._wake.set()

    @staticmethod
    async def _read_reasons(
        repo: AsyncImportJobRepository, channel: _Channel, job: ImportJob
    ) -> None:
        channel.reasons = tuple(await repo.error_summary(job.id, limit=SHOWN_REASONS))
        channel.reasons_count, channel.reasons_at = job.error_count, time.monotonic()

    @staticmethod
    def _deliver(channel: _Channel, delivery: Delivery) -> None:
        channel.last = delivery
        for inbox in channel.inboxes:
            inbox.put(channel.state.job_id, delivery)
        if isinstance(delivery, DataImportError) or delivery.job.is_finished:
            # Nothing changes any more: no more reads; subscribers end their streams.
            channel.due = math.inf
