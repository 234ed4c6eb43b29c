"""The identity a worker process records in the jobs it runs."""

from __future__ import annotations

import os
import secrets
import socket

_current: tuple[int, str] | None = None


def worker_id() -> str:
    """Return this process's worker identity: ``host:pid:random``.

    Unique per process: the random part tells apart a restarted process that
    got the same pid, or two machines with one host name. A forked child gets
    an identity of its own.
    """
    global _current  # noqa: PLW0603 - one identity per process, made on first use
    pid = os.getpid()
    if _current is None or _current[0] != pid:
        host = socket.gethostname()[:150] or "localhost"
        _current = (pid, f"{host}:{pid}:{secrets.token_hex(4)}")
    return _current[1]
