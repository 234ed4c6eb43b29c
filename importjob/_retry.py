"""When to try a statement again: the one retry policy of the package.

Only a lost connection (a server restart, a failover, a cut network) is
worth another try; every other error goes to the caller at once. The wait
grows from ``delay`` by doubling up to ``max_delay``. The tracker's flushes
and the watcher's reconnects both use it, each with its own number of tries.
"""

from __future__ import annotations

import attrs
import psycopg

__all__ = ["Backoff", "lost_connection"]


def lost_connection(exc: BaseException) -> psycopg.OperationalError | None:
    """Return the driver's lost-connection error behind ``exc``, or None when it is not one.

    ``exc`` is the driver's own exception, or the project exception that
    `importjob._errors.translate` made of it (the driver's is its cause).
    """
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, psycopg.OperationalError):
            return candidate
    return None


@attrs.frozen
class Backoff:
    """A bounded number of retries with a doubling wait between them."""

    attempts: int
    delay: float = 0.1
    max_delay: float = 2.0

    def wait(self, attempt: int, exc: Exception) -> float | None:
        """Return how long to wait before retry number ``attempt`` (from 0) after ``exc``.

        Raises ``exc`` itself when it is not a lost connection; returns None
        when the retries are used up (the caller says what was lost).
        """
        if lost_connection(exc) is None:
            raise exc
        if attempt >= self.attempts:
            return None
        return float(min(self.max_delay, self.delay * 2**attempt))
