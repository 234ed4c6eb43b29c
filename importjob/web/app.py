"""The web application: its database pool, its listener, its routes and its rules.

`create_app` builds a Starlette app over the database at a URL: a small
`psycopg_pool` pool for reads and one `Listener` connection for every live
stream. Errors become JSON (or a page) with a status and never a traceback:
bad input is 400 naming the field, an unknown job 404, a database away 503.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from jinja2 import Environment, PackageLoader, select_autoescape
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from importjob._job_json import value_text
from importjob.exceptions import (
    DataImportError,
    ImportJobNotFoundError,
    InvalidFieldError,
    InvalidStatusTransitionError,
)
from importjob.web import routes
from importjob.web._listener import Listener

__all__ = ["LOOPBACK_NAMES", "POOL_SIZE", "TOKEN_HEADER", "create_app"]

_log = logging.getLogger("importjob.web")

# The names a browser may use for a server bound to loopback.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
POOL_SIZE = 4
"""How many connections the server's pool holds at most for reads.

Reads are one short statement each: a few connections serve many pages.
"""
TOKEN_HEADER = "X-Importjob-Token"  # noqa: S105 - the header's name, not a secret
"""The request header that must carry the token printed at start for a cancel.

A header, because no cross-site form or image can send one.
"""
# Nothing the page did not ship runs or loads: a value that got past the
# escaping still could not execute.
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class _SecurityHeaders:
    """Add the headers above to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self._app(scope, receive, send_with_headers)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/metrics", "/healthz"))


def _error(request: Request, status: int, message: str, field: str | None = None) -> Response:
    if _wants_html(request):
        page = request.app.state.templates.get_template("error.html")
        return Response(
            page.render(status=status, message=message),
            status_code=status,
            media_type="text/html; charset=utf-8",
        )
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidFieldError)  # noqa: S101 - registered for this class only
    return _error(request, 400, str(exc), exc.field)


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ImportJobNotFoundError)  # noqa: S101 - registered for this class only
    return _error(request, 404, f"no import job {exc.job_id}")


async def _refused(request: Request, exc: Exception) -> Response:
    return _error(request, 409, str(exc))


async def _unavailable(request: Request, exc: Exception) -> Response:
    # The driver's message may name the host; the class says enough to the
    # client, the log keeps it for the operator (never a password: libpq
    # does not repeat it).
    _log.warning("database error on %s: %s", request.url.path, type(exc).__name__)
    return _error(request, 503, "the database is not available")


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for this class only
    return _error(request, exc.status_code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> Response:
    _log.error("unexpected error on %s: %r", request.url.path, type(exc).__name__)
    return _error(request, 500, "internal error")


def create_app(
    url: str,
    *,
    allow_cancel: bool = False,
    token: str | None = None,
    pool_size: int = POOL_SIZE,
    allowed_hosts: Sequence[str] = ("*",),
) -> Starlette:
    """Return the dashboard and API over the database at ``url``.

    With ``allow_cancel``, ``POST /api/jobs/{id}/cancel`` cancels when the
    request carries ``token`` in the `TOKEN_HEADER` header; without it the
    server changes nothing. A request whose Host header is not one of
    ``allowed_hosts`` is refused (400). Raises `InvalidFieldError` for
    ``allow_cancel`` without a token.
    """
    if allow_cancel and not token:
        raise InvalidFieldError("token", "is needed with allow_cancel", token)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "application_name": "importjob serve"},
            open=False,
            name="importjob-serve",
        )
        await pool.open()
        listener = Listener({"conninfo": url}, pool)
        listener.start()
        app.state.pool, app.state.listener = pool, listener
        try:
            yield
        finally:
            await listener.close()
            await pool.close()

    app = Starlette(
        routes=[
            *routes.ROUTES,
            Mount("/static", StaticFiles(packages=[("importjob.web", "static")]), name="static"),
        ],
        middleware=[
            # A page of another site that rebinds its name to 127.0.0.1 comes
            # with its own name as Host: refused, so it cannot read the jobs.
            Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
            Middleware(_SecurityHeaders),
        ],
        exception_handlers={
            InvalidFieldError: _invalid,
            ImportJobNotFoundError: _not_found,
            InvalidStatusTransitionError: _refused,
            DataImportError: _unavailable,
            psycopg.Error: _unavailable,
            PoolTimeout: _unavailable,
            HTTPException: _http,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.allow_cancel = allow_cancel
    app.state.token = token
    templates = Environment(
        loader=PackageLoader("importjob.web", "templates"),
        autoescape=select_autoescape(default=True),
    )
    # A checkpoint as the CLI shows it (then escaped like every value).
    templates.filters["value_text"] = functools.partial(value_text, missing="\u2013")  # en dash
    app.state.templates = templates
    return app
