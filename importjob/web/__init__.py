"""``importjob serve``: a live dashboard and a JSON API over the import jobs.

Needs the ``web`` extra (``pip install 'importjob[web]'``): Starlette and
uvicorn serve it, Jinja2 renders the pages, psycopg_pool holds the reads'
connections, sse-starlette streams the live snapshots and prometheus-client
writes ``/metrics``. `create_app` builds the application, `serve` runs it;
mounted in an application of yours, your access function (`Access`) decides
what each of your users sees and may do.
"""

from __future__ import annotations

import logging
import secrets
import signal
import socket
from collections.abc import Callable

from importjob.web.access import (
    AUDIT_LOGGER,
    TOKEN_HEADER,
    Access,
    AccessFunction,
    TokenAccess,
    is_loopback,
)
from importjob.web.app import LOOPBACK_NAMES, POOL_SIZE, Dashboard, create_app

__all__ = [
    "AUDIT_LOGGER",
    "POOL_SIZE",
    "TOKEN_HEADER",
    "Access",
    "AccessFunction",
    "Dashboard",
    "TokenAccess",
    "create_app",
    "is_loopback",
    "serve",
]


def _listening_socket(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    """Bind and listen, so the port (0: any free one) is known before serving.

    Made with IPPROTO_TCP named, not `socket.create_server` (protocol 0):
    asyncio sets TCP_NODELAY only on connections of a socket that names it,
    and without it each keep-alive response waits ~40 ms for a delayed ACK.
    """
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def serve(
    url: str,
    *,
    host: str,
    port: int,
    allow_cancel: bool,
    database_label: str,
    echo: Callable[[str], None],
) -> None:
    """Serve the dashboard over the database at ``url`` until stopped (SIGINT, SIGTERM).

    Binds first, then says where it listens (``database_label`` names the
    database, with no password), and, with ``allow_cancel``, the token that
    cancel requests must carry. Raises `OSError` when the address cannot be
    bound.
    """
    import uvicorn  # noqa: PLC0415 - only the command that serves needs it

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = _listening_socket(host, port, family)
    bound = sock.getsockname()[1]
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    where = (
        "loopback only: reachable from this machine alone"
        if is_loopback(host)
        else "NOT loopback: anyone who reaches this address reads every job"
    )
    echo(f"importjob serve: http://{shown_host}:{bound}/ ({where})")
    echo(f"database: {database_label}")
    token = secrets.token_urlsafe(24) if allow_cancel else None
    if token:
        echo(f"cancel allowed with this token in the {TOKEN_HEADER} header: {token}")
    else:
        echo("read-only (start with --allow-cancel to allow cancelling jobs)")
    # The operator sees every cancel, allowed or refused, where the banner is.
    audit = logging.getLogger(AUDIT_LOGGER)
    audit.setLevel(logging.INFO)
    shown = logging.StreamHandler()
    shown.setFormatter(logging.Formatter("importjob serve: %(message)s"))
    audit.addHandler(shown)
    app = create_app(
        url,
        access=TokenAccess(token, loopback_only=is_loopback(host)),
        # Bound to loopback, only loopback names: no DNS rebinding onto it.
        allowed_hosts=(*LOOPBACK_NAMES, host) if is_loopback(host) else ("*",),
    )
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        # Streams end when the server stops; none should hold it up long.
        timeout_graceful_shutdown=5,
    )
    # uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal
    # again under the handler found at start: with these, a stop ends the
    # process normally (exit 0, atexit handlers run), not killed by it.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, _stopped)
    uvicorn.Server(config).run(sockets=[sock])
    echo("importjob serve: stopped")


def _stopped(signum: int, frame: object) -> None:
    """Take a stop signal that uvicorn has already acted on."""
