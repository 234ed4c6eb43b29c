"""A FastAPI application with a login of its own and the import dashboard mounted in it.

    pip install 'importjob[web]' fastapi
    DATABASE_URL=postgresql://... uvicorn --factory dashboard_in_fastapi:from_environment

Open http://127.0.0.1:8000/, sign in as ``alice`` (tenant-a, may cancel),
``bob`` (tenant-b, reads only) or ``admin`` (every tenant): the dashboard at
``/admin/imports/`` shows each of them their own tenant's imports, behind
the application's own session cookie. The users and their passwords are
the example's: a real application asks its own user store.
"""

from __future__ import annotations

import contextlib
import hmac
import html
import os
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from importjob.web import Access, create_app

PREFIX = "/admin/imports"
SESSION_COOKIE = "session"
# name: (password, tenant, sees every tenant, may cancel)
USERS = {
    "alice": ("alice-pw", "tenant-a", False, True),
    "bob": ("bob-pw", "tenant-b", False, False),
    "admin": ("admin-pw", None, True, True),
}

_LOGIN = """<!doctype html><title>sign in</title>
<form method="post" action="/login">
<label>user <input name="user"></label>
<label>password <input name="password" type="password"></label>
<button>sign in</button></form>"""


def create(url: str) -> FastAPI:
    """Return the application over the import jobs at ``url``."""
    sessions: dict[str, str] = {}  # session id: user name (a real one keeps them in a store)

    def access(request: Request) -> Access | None:
        # The dashboard asks on every request: who is it, what may they see and do.
        name = sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        if name is None:
            return None  # 403, and the dashboard reads nothing
        _, tenant, every_tenant, may_cancel = USERS[name]
        return Access(user=name, owner=tenant, all_owners=every_tenant, can_cancel=may_cancel)

    dashboard = create_app(url, access=access)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Starlette runs the host's lifespan only: it opens the dashboard's pool and listener.
        async with dashboard.lifespan():
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> str:
        name = sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        if name is None:
            return _LOGIN
        return f'<p>signed in as {html.escape(name)}: <a href="{PREFIX}/">imports</a></p>'

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        name, password = form.get("user", [""])[0], form.get("password", [""])[0]
        known = USERS.get(name)
        if known is None or not hmac.compare_digest(password.encode(), known[0].encode()):
            return HTMLResponse(_LOGIN, status_code=401)
        session = secrets.token_urlsafe(32)
        sessions[session] = name
        answer = RedirectResponse(f"{PREFIX}/", status_code=303)
        # SameSite: a page of another site cannot act with this cookie.
        answer.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax")
        return answer

    app.mount(PREFIX, dashboard)
    return app


def from_environment() -> FastAPI:
    """Return the application over ``$DATABASE_URL`` (for ``uvicorn --factory``)."""
    return create(os.environ["DATABASE_URL"])
