"""The web application: its database pool, its listener, its routes and its rules.

`create_app` builds a `Dashboard`, a Starlette app over the database at a
URL: a small `psycopg_pool` pool for reads and one `Listener` connection for
every live stream, opened by its lifespan (the host's, when it is mounted).
Before any route runs, a gate asks the application's access function about
the request. Errors become JSON (or a page) with a status and never a
traceback: bad input is 400 naming the field, a refused request 403, an
unknown job 404, a database away 503.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
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
from importjob.web import _times, routes
from importjob.web._listener import Listener
from importjob.web._paths import base_path, route_path
from importjob.web.access import ACCESS_KEY, Access, AccessFunction, TokenAccess

__all__ = ["LOOPBACK_NAMES", "NOT_STARTED", "POOL_SIZE", "Dashboard", "create_app"]

_log = logging.getLogger("importjob.web")

# The names a browser may use for a server bound to loopback.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
POOL_SIZE = 4
"""How many connections the server's pool holds at most for reads.

Reads are one short statement each: a few connections serve many pages.
"""
NOT_STARTED = (
    "importjob.web: a request came before the dashboard's lifespan ran: mounted in"
    " another application, enter `dashboard.lifespan()` in the host's lifespan"
)
"""What the log says for a request to a dashboard whose pool is not open."""
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
    return not route_path(request.scope).startswith(("/api/", "/metrics", "/healthz"))


def _error(request: Request, status: int, message: str, field: str | None = None) -> Response:
    if _wants_html(request):
        page = request.app.state.templates.get_template("error.html")
        return Response(
            page.render(status=status, message=message, base=base_path(request.scope)),
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


class _Gate:
    """Decide each request's access before any route reads anything.

    A request under a mount point the links cannot stay under is 400; one
    before the dashboard's lifespan ran is 503, saying what to do; one the
    access function refuses (None) is 403. The package's own static files
    hold no job and are served to anyone.
    """

    def __init__(self, app: ASGIApp, access: AccessFunction) -> None:
        self._app = app
        self._access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await self._refusal(request)
        if response is not None:
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)

    async def _refusal(self, request: Request) -> Response | None:
        if base_path(request.scope) is None:
            # No page: a link on it would be built from this path.
            _log.warning("refused a request under the root path %r", request.scope["root_path"])
            return JSONResponse({"error": "the dashboard's mount path is not valid"}, 400)
        if route_path(request.scope).startswith("/static/"):
            return None
        state = request.app.state
        if not state.started:
            _log.error(NOT_STARTED)
            return _error(request, 503, "the dashboard is not started")
        return await self._decide(request)

    async def _decide(self, request: Request) -> Response | None:
        try:
            decided = self._access(request)
            if inspect.isawaitable(decided):
                decided = await decided
        except Exception:
            # The application's own code: the log has the traceback, the answer none.
            _log.exception("the access function raised on %s", request.url.path)
            return _error(request, 500, "internal error")
        if decided is None:
            return _error(request, 403, "forbidden")
        if not isinstance(decided, Access):
            _log.error("the access function returned %s, not an Access", type(decided).__name__)
            return _error(request, 500, "internal error")
        request.scope[ACCESS_KEY] = decided
        return None


class Dashboard(Starlette):
    """The dashboard and its API: a Starlette application, built by `create_app`.

    Served at the top (``uvicorn``, ``importjob serve``), it opens its pool
    and its listener in its own lifespan. Mounted in another application,
    whose lifespan alone runs, the host enters `lifespan` in its own.
    """

    def __init__(self, url: str, pool_size: int, **app: Any) -> None:
        self._url, self._pool_size = url, pool_size
        self._entered = False
        super().__init__(lifespan=self._lifespan, **app)
        self.state.started = False

    def _lifespan(self, app: Starlette) -> contextlib.AbstractAsyncContextManager[None]:
        return self.lifespan()

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Open the pool and the listening connection for the block, then close them.

        Enter it in the host application's lifespan when the dashboard is
        mounted: until then every request is 503. Raises `RuntimeError`
        when it is entered again while it runs.
        """
        if self._entered:
            raise RuntimeError("the dashboard's lifespan is running already")
        self._entered = True  # before the first wait: a second entry meanwhile is refused too
        try:
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                self._url,
                min_size=1,
                max_size=self._pool_size,
                kwargs={"autocommit": True, "application_name": "importjob serve"},
                open=False,
                name="importjob-serve",
            )
            await pool.open()
            listener = Listener({"conninfo": self._url}, pool)
            listener.start()
            self.state.pool, self.state.listener = pool, listener
            self.state.started = True
            try:
                yield
            finally:
                self.state.started = False
                await listener.close()
                await pool.close()
        finally:
            self._entered = False


def create_app(
    url: str,
    *,
    access: AccessFunction | None = None,
    allow_cancel: bool = False,
    token: str | None = None,
    pool_size: int = POOL_SIZE,
    allowed_hosts: Sequence[str] = ("*",),
) -> Dashboard:
    """Return the dashboard and API over the database at ``url``, to serve or to mount.

    ``access`` decides, for each request, what its user sees and may do
    (`Access`), or refuses it (None: 403). Without it, whoever reaches the
    app sees every job and cancels nothing, or, with ``allow_cancel``,
    cancels with ``token`` in the `TOKEN_HEADER` header (`TokenAccess`). A
    request whose Host header is not one of ``allowed_hosts`` is refused
    (400). Raises `InvalidFieldError` for ``allow_cancel`` without a token,
    or for ``access`` with either.
    """
    if access is not None and (allow_cancel or token is not None):
        raise InvalidFieldError("access", "replaces allow_cancel and token: give one", access)
    if allow_cancel and not token:
        raise InvalidFieldError("token", "is needed with allow_cancel", token)
    decide: AccessFunction = access or TokenAccess(token if allow_cancel else None)
    app = Dashboard(
        url,
        pool_size,
        routes=[
            *routes.ROUTES,
            Mount("/static", StaticFiles(packages=[("importjob.web", "static")]), name="static"),
        ],
        middleware=[
            # A page of another site that rebinds its name to 127.0.0.1 comes
            # with its own name as Host: refused, so it cannot read the jobs.
            Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
            Middleware(_SecurityHeaders),
            Middleware(_Gate, access=decide),
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
    )
    # serve's token: the page asks for it; its refusal says how cancels are allowed.
    app.state.asks_token = isinstance(decide, TokenAccess) and decide.token is not None
    app.state.cancel_refusal = (
        decide.refusal if isinstance(decide, TokenAccess) else "you may not cancel import jobs"
    )
    templates = Environment(
        loader=PackageLoader("importjob.web", "templates"),
        autoescape=select_autoescape(default=True),
    )
    # A checkpoint as the CLI shows it (then escaped like every value).
    templates.filters["value_text"] = functools.partial(value_text, missing="\u2013")  # en dash
    templates.filters["ago"] = _times.ago
    templates.filters["exact"] = _times.exact
    app.state.templates = templates
    return app
