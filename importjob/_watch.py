"""Follow one job's changes: what both repositories' ``watch`` share.

A watcher LISTENs on the job's channel and marks the job watched for the
next `REGISTRATION_TTL` (``sql/watch.sql``): only a marked job's changes
notify (migration 0007), so a job nobody watches costs its writers nothing.
The watcher moves the mark on every `REFRESH_SECONDS` while it listens; one
that dies (or stops) leaves a mark that lapses by itself.

The mark is set by an UPDATE that locks the row, so it waits for a writer
that changed the job before it and reads that change, and every later
writer sees it. The watcher also reads the job at least every
`FALLBACK_SECONDS` without a notification, for a change that notifies
nobody (a session whose triggers do not fire, a lost notification).

`WatchState` decides what to read and how long to wait, without I/O; the
repositories run the statements and wait on their connections.
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import timedelta
from typing import Any

import psycopg

from importjob.exceptions import ImportJobNotFoundError
from importjob.models import ImportJob, job_from_values

# A mark lasts this long unless moved on: how long a watcher that died
# (SIGKILL) or stopped goes on costing its job's writers a notification.
REGISTRATION_TTL = timedelta(seconds=30)
# A live watcher moves its mark on this often, well within the TTL.
REFRESH_SECONDS = 10.0
# The longest wait for a notification before the job is read anyway.
FALLBACK_SECONDS = 5.0


class WatchState:
    """What one ``watch`` call knows between reads."""

    def __init__(self, job_id: uuid.UUID, timeout: float | None) -> None:
        self.params: dict[str, Any] = {"id": job_id, "ttl": REGISTRATION_TTL}
        self._timeout = timeout
        self._last: ImportJob | None = None
        self._registered_at = -math.inf
        self._changed_at = time.monotonic()

    @property
    def job_id(self) -> uuid.UUID:
        """Return the id of the watched job."""
        job_id: uuid.UUID = self.params["id"]
        return job_id

    def connected(self) -> None:
        """Mark the job again on the next read: a new connection, maybe after the mark lapsed."""
        self._registered_at = -math.inf

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
        self._changed_at = time.monotonic()
        return job

    def wait_seconds(self) -> float:
        """Return how long to wait for a notification before reading again.

        Raises `TimeoutError` when ``timeout`` seconds passed since the last
        change.
        """
        now = time.monotonic()
        wait = min(FALLBACK_SECONDS, max(0.0, self._registered_at + REFRESH_SECONDS - now))
        if self._timeout is not None:
            left = self._changed_at + self._timeout - now
            if left <= 0:
                raise TimeoutError(f"import job {self.job_id} did not change in {self._timeout} s")
            wait = min(wait, left)
        return wait


def wait_for_notify(conn: psycopg.Connection[Any], timeout: float) -> None:
    """Wait for the next notification, then take all queued behind it: they fold into one.

    The drain runs after the first generator has closed: a generator holds
    the connection's lock while it is open.
    """
    if any(True for _ in conn.notifies(timeout=timeout, stop_after=1)):
        for _ in conn.notifies(timeout=0):
            pass


async def wait_for_notify_async(conn: psycopg.AsyncConnection[Any], timeout: float) -> None:
    """Wait like `wait_for_notify`, in asyncio."""
    woken = False
    async for _ in conn.notifies(timeout=timeout, stop_after=1):
        woken = True
    if woken:
        async for _ in conn.notifies(timeout=0):
            pass
