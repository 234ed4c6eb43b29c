"""Follow jobs' changes: one listening connection per process for every ``watch``.

A watched job is LISTENed to and marked watched for the next
`REGISTRATION_TTL` (``sql/watch.sql``): only a marked job's changes notify
(the ``import_job_notify`` trigger of ``schema.sql``), so a job nobody
watches costs its writers nothing. The
mark is moved on every `REFRESH_SECONDS` while someone watches; one left by
a watcher that died (or stopped) lapses by itself.

The mark is set by an UPDATE that locks the row, so it waits for a writer
that changed the job before it and reads that change, and every later
writer sees it. A job is also read at least every `FALLBACK_SECONDS`
without a notification, for a change that notifies nobody (a session whose
triggers do not fire, a lost notification).

Every ``watch`` of a process on one database shares one `Hub`: a thread
with one connection that LISTENs, marks and reads each followed job, and
hands each new snapshot to every `Subscription` of the job (sync or async).
The reads share one backend, which costs the job's writers less than a
backend per watch (the benchmark's writes section measures it). A watch
costs no connection of its own, and ten watches of one job cost one read
per change.

`WatchState` decides what to read and when, without I/O; the web server's
listener (`importjob.web._listener`) runs it on its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Self

import psycopg
from psycopg import sql

from importjob._errors import translate, translate_errors
from importjob._queries import query
from importjob._retry import Backoff, lost_connection
from importjob.exceptions import (
    DataImportError,
    ImportJobDatabaseError,
    ImportJobNotFoundError,
    ImportJobTimeoutError,
)
from importjob.models import ImportJob, job_from_values

# A mark lasts this long unless moved on: how long a watcher that died
# (SIGKILL) or stopped goes on costing its job's writers a notification.
REGISTRATION_TTL = timedelta(seconds=30)
# A live watcher moves its mark on this often, well within the TTL.
REFRESH_SECONDS = 10.0
# The longest wait for a notification before the job is read anyway.
FALLBACK_SECONDS = 5.0
# How long the hub's mark waits for a writer's row lock. The hub reads every
# job of the process in turn: a transaction that holds one job's row must
# not stall the others. Past it the job is read unmarked and marked again at
# its fallback read.
LOCK_TIMEOUT = timedelta(seconds=1)
_LOCK_TIMEOUT_MS = str(int(LOCK_TIMEOUT.total_seconds() * 1000))
# How long a hub keeps its connection once its last watch has gone: a loop
# that watches one job after another opens it once.
IDLE_SECONDS = 0.5
# A hub whose connection is cut reconnects after 0.1 s, then twice as long
# each time (at most 2 s), 10 times: about 15 s in all.
WATCH_RETRY = Backoff(attempts=10)


class WatchState:
    """When one followed job is marked and read, without I/O."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.params: dict[str, Any] = {"id": job_id, "ttl": REGISTRATION_TTL}
        self._last: ImportJob | None = None
        self._registered_at = -math.inf

    @property
    def job_id(self) -> uuid.UUID:
        """Return the id of the watched job."""
        job_id: uuid.UUID = self.params["id"]
        return job_id

    def connected(self) -> None:
        """Mark the job again on the next read: a new connection, maybe after the mark lapsed."""
        self._registered_at = -math.inf

    def refused(self) -> None:
        """Mark the job at the fallback read: the mark waited too long for a row lock."""
        self._registered_at = time.monotonic() - REFRESH_SECONDS + FALLBACK_SECONDS

    def statement(self) -> str:
        """Name the statement of the next read: one that marks the job too, when that is due."""
        now = time.monotonic()
        if now - self._registered_at >= REFRESH_SECONDS:
            self._registered_at = now
            return "watch"
        return "watch_read"

    def changed(self, row: Any) -> ImportJob | None:
        """Return the job read, when it differs from the last one returned.

        Raises `ImportJobNotFoundError` when there is no job (or no more).
        """
        if row is None:
            raise ImportJobNotFoundError(self.job_id)
        job = job_from_values(row)
        if job == self._last:
            return None
        self._last = job
        return job

    def wait_seconds(self) -> float:
        """Return how long to wait for a notification before reading again."""
        due = self._registered_at + REFRESH_SECONDS - time.monotonic()
        return min(FALLBACK_SECONDS, max(0.0, due))


def channel_statement(name: str, job_id: uuid.UUID) -> sql.Composed:
    """Return LISTEN or UNLISTEN (``sql/<name>.sql``) for the job's channel."""
    channel = sql.Identifier(f"import_job_{job_id.hex}")
    return sql.SQL(query(name)).format(channel=channel)


# What a subscription receives: the job's newest snapshot, or why there is none.
Delivery = ImportJob | DataImportError


class Subscription:
    """One ``watch`` of a job: the newest snapshot it has not taken yet, and its timeout.

    The hub's thread puts; the watch takes. ``wake`` tells the watch that
    something is there (a `threading.Event`, or an `asyncio.Event` set
    through its loop).
    """

    def __init__(
        self, hub: Hub, job_id: uuid.UUID, timeout: float | None, wake: Callable[[], None]
    ) -> None:
        self.hub, self.job_id, self._timeout, self._wake = hub, job_id, timeout, wake
        self._lock = threading.Lock()
        self._pending: Delivery | None = None
        self._changed_at: float | None = None  # the timeout runs from the first snapshot

    def put(self, delivery: Delivery) -> None:
        """Replace what waits (a slow watch gets the latest state) and wake the watch."""
        with self._lock:
            self._pending = delivery
        self._wake()

    def take(self) -> ImportJob | None:
        """Return the snapshot waiting, or None; raise the failure waiting.

        Raises `TimeoutError` when nothing came for ``timeout`` seconds
        since the last snapshot taken.
        """
        with self._lock:
            delivery, self._pending = self._pending, None
        if isinstance(delivery, DataImportError):
            raise delivery  # shared by the job's watches, as a future's exception is
        if delivery is not None:
            self._changed_at = time.monotonic()
        elif self.wait_seconds() == 0.0:
            raise TimeoutError(f"import job {self.job_id} did not change in {self._timeout} s")
        return delivery

    def wait_seconds(self) -> float | None:
        """Return how long the watch may wait for a delivery (None: as long as it takes)."""
        if self._timeout is None or self._changed_at is None:
            return None
        return max(0.0, self._changed_at + self._timeout - time.monotonic())


class _Following:
    """A watch's subscription, given up when its ``with`` block ends."""

    _subscription: Subscription

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._subscription.hub.unsubscribe(self._subscription)


class Watch(_Following):
    """A sync ``watch``'s subscription: ``with`` it, then `next` until the job ends."""

    def __init__(self, reopen: dict[str, Any], job_id: uuid.UUID, timeout: float | None) -> None:
        self._ready = threading.Event()
        self._subscription = hub(reopen).subscribe(job_id, timeout, self._ready.set)

    def next(self) -> ImportJob:
        """Wait for the job's next snapshot."""
        while True:
            # Clear before taking: a snapshot put after the take sets it again.
            self._ready.wait(self._subscription.wait_seconds())
            self._ready.clear()
            job = self._subscription.take()
            if job is not None:
                return job


class AsyncWatch(_Following):
    """`Watch` for asyncio: the hub's thread wakes the watch through its loop."""

    def __init__(self, reopen: dict[str, Any], job_id: uuid.UUID, timeout: float | None) -> None:
        self._ready = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(self._ready.set)

        self._subscription = hub(reopen).subscribe(job_id, timeout, wake)

    async def next(self) -> ImportJob:
        """Wait for the job's next snapshot."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), self._subscription.wait_seconds())
            self._ready.clear()
            job = self._subscription.take()
            if job is not None:
                return job


class Followed:
    """A job a listening connection follows: its read state, LISTENed or not, when to read it.

    The hub's channels and the web server's listener's both start here.
    """

    def __init__(self, job_id: uuid.UUID) -> None:
        self.state = WatchState(job_id)
        self.listening = False
        self.due = math.inf  # when to read next (monotonic); at once once listening


class _Channel(Followed):
    """One followed job in a hub, with its subscriptions and its newest delivery."""

    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(job_id)
        self.subscriptions: set[Subscription] = set()
        self.last: Delivery | None = None


class Hub:
    """One process's listening connection to one database, and the jobs it follows.

    Made by `hub`; its thread starts with the first subscription and ends,
    closing the connection, `IDLE_SECONDS` after the last one has gone.
    """

    def __init__(self, reopen: dict[str, Any]) -> None:
        self._connect = {**reopen, "autocommit": True, "application_name": "importjob watch"}
        self._lock = threading.Lock()
        self._channels: dict[uuid.UUID, _Channel] = {}
        self._thread: threading.Thread | None = None
        # Written to wake the thread from its wait for notifications.
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)

    def subscribe(
        self, job_id: uuid.UUID, timeout: float | None, wake: Callable[[], None]
    ) -> Subscription:
        """Follow ``job_id`` for a new subscription; it gets the newest snapshot at once, if any."""
        subscription = Subscription(self, job_id, timeout, wake)
        with self._lock:
            channel = self._channels.get(job_id)
            if channel is None:
                channel = self._channels[job_id] = _Channel(job_id)
            channel.subscriptions.add(subscription)
            if channel.last is not None:
                subscription.put(channel.last)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="importjob watch", daemon=True
                )
                self._thread.start()
        self._poke()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to ``subscription``; the job is UNLISTENed when it was the last."""
        with self._lock:
            channel = self._channels.get(subscription.job_id)
            if channel is None or subscription not in channel.subscriptions:
                return  # its channel failed and was dropped already
            channel.subscriptions.discard(subscription)
            if not channel.subscriptions:
                # Its mark lapses by itself.
                del self._channels[subscription.job_id]
        self._poke()

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a byte waits already: one wakes it
            self._wake_in.send(b"\0")

    # The thread.

    def _run(self) -> None:
        failure: DataImportError | None = None
        try:
            self._serve_until_idle()
        except DataImportError as exc:
            failure = exc
        except psycopg.Error as exc:
            failure = translate(exc, {})
            failure.__cause__ = exc
        except BaseException as exc:
            failure = ImportJobDatabaseError(f"the watch thread failed: {exc!r}")
            failure.__cause__ = exc
            raise
        finally:
            with self._lock:
                if failure is not None:
                    self._fail_all(failure)
                if self._thread is threading.current_thread():
                    self._thread = None

    def _serve_until_idle(self) -> None:
        attempt = 0
        while True:
            try:
                with psycopg.connect(**self._connect) as conn:
                    with translate_errors({}):
                        conn.execute(query("watch_session"), {"lock_timeout": _LOCK_TIMEOUT_MS})
                    attempt = 0
                    self._serve(conn)
                    return
            except (psycopg.OperationalError, DataImportError) as exc:
                wait = WATCH_RETRY.wait(attempt, exc)  # raises what is not a lost connection
                with self._lock:
                    if not self._channels:
                        self._thread = None  # nobody to reconnect for
                        return
                    if wait is None:
                        lost = lost_connection(exc)
                        failure = ImportJobDatabaseError(
                            f"the watcher lost its connection and could not reconnect: {lost}"
                        )
                        failure.__cause__ = lost
                        self._fail_all(failure)
                        self._thread = None
                        return
                time.sleep(wait)
                attempt += 1

    def _fail_all(self, failure: DataImportError) -> None:
        # Under the lock: every subscription raises ``failure``; nothing is followed any more.
        for channel in self._channels.values():
            for subscription in channel.subscriptions:
                subscription.put(failure)
        self._channels.clear()

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        with selectors.DefaultSelector() as selector:
            # A selector, not select(): a busy process's descriptors may pass FD_SETSIZE.
            selector.register(conn.fileno(), selectors.EVENT_READ)
            selector.register(self._wake_out, selectors.EVENT_READ)
            self._serve_on(conn, selector)

    def _serve_on(self, conn: psycopg.Connection[Any], selector: selectors.BaseSelector) -> None:
        listened: dict[str, _Channel] = {}
        idle_since: float | None = None
        with self._lock:
            for channel in self._channels.values():  # a new connection listens to nothing yet
                channel.listening = False
        while True:
            with self._lock:
                channels = list(self._channels.values())
                if channels:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= IDLE_SECONDS:
                    self._thread = None  # under the lock: the next subscription starts another
                    return
            self._listen(conn, listened, channels)
            for channel in channels:
                if channel.due <= time.monotonic():
                    self._read(conn, channel)
            soonest = min((channel.due for channel in channels), default=math.inf)
            if not channels:
                wait: float | None = IDLE_SECONDS
            elif soonest == math.inf:  # every job ended or failed: wait for a poke
                wait = None
            else:
                wait = max(0.0, soonest - time.monotonic())
            for name in self._wait(conn, selector, wait):
                notified = listened.get(name)
                if notified is not None:
                    notified.due = 0.0

    @staticmethod
    def _listen(
        conn: psycopg.Connection[Any], listened: dict[str, _Channel], channels: list[_Channel]
    ) -> None:
        """UNLISTEN the jobs no longer followed, LISTEN the new ones and read them at once."""
        followed = {id(channel) for channel in channels}
        for name, channel in list(listened.items()):
            if id(channel) not in followed:
                conn.execute(channel_statement("unlisten", channel.state.job_id))
                del listened[name]
        for channel in channels:
            if not channel.listening:
                # LISTEN before the mark: a change after the mark notifies us.
                conn.execute(channel_statement("listen", channel.state.job_id))
                listened[f"import_job_{channel.state.job_id.hex}"] = channel
                channel.listening = True
                channel.state.connected()
                channel.due = 0.0

    def _wait(
        self,
        conn: psycopg.Connection[Any],
        selector: selectors.BaseSelector,
        timeout: float | None,
    ) -> set[str]:
        """Return the channels notified within ``timeout`` s (None: any time); none when poked."""
        # Those that came during the reads wait in psycopg's backlog.
        names = {notify.channel for notify in conn.notifies(timeout=0)}
        if names:
            return names
        for key, _ in selector.select(timeout):
            if key.fileobj is self._wake_out:
                with contextlib.suppress(BlockingIOError):
                    self._wake_out.recv(4096)
        # A burst folds into one read per job.
        return {notify.channel for notify in conn.notifies(timeout=0)}

    def _read(self, conn: psycopg.Connection[Any], channel: _Channel) -> None:
        state = channel.state
        name = state.statement()
        try:
            try:
                row = _fetch(conn, name, state.params)
            except ImportJobTimeoutError:
                if name != "watch":
                    raise
                # A transaction holds the row: read it unmarked, mark at the fallback read.
                state.refused()
                row = _fetch(conn, "watch_read", state.params)
            job = state.changed(row)
        except ImportJobTimeoutError:
            channel.due = time.monotonic() + FALLBACK_SECONDS  # the table is locked: later
            return
        except DataImportError as exc:
            if lost_connection(exc) is not None:
                raise
            self._deliver(channel, exc)  # no such job (any more), or refused
            return
        channel.due = time.monotonic() + state.wait_seconds()
        if job is not None:
            self._deliver(channel, job)

    def _deliver(self, channel: _Channel, delivery: Delivery) -> None:
        if isinstance(delivery, DataImportError) or delivery.is_finished:
            channel.due = math.inf  # nothing changes any more: no more reads
        with self._lock:
            channel.last = delivery
            subscriptions = list(channel.subscriptions)
        for subscription in subscriptions:
            subscription.put(delivery)


def _fetch(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> Any:
    with translate_errors(params):
        return conn.execute(query(name), params).fetchone()


class _Hubs:
    """The process's hubs, one per database (the connection's parameters)."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[tuple[str, Any], ...], Hub] = {}
        self.lock = threading.Lock()

    def forget(self) -> None:
        """Start over with none (and a lock no other thread may hold)."""
        self.by_key = {}
        self.lock = threading.Lock()


_HUBS = _Hubs()
if hasattr(os, "register_at_fork"):
    # A forked child has none of its parent's threads: its watches start their own.
    os.register_at_fork(after_in_child=_HUBS.forget)


def hub(reopen: dict[str, Any]) -> Hub:
    """Return the process's hub for the database ``reopen`` connects to."""
    key = tuple(sorted(reopen.items()))
    with _HUBS.lock:
        found = _HUBS.by_key.get(key)
        if found is None:
            found = _HUBS.by_key[key] = Hub(reopen)
        return found
