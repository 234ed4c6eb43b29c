"""The floor's web half for the web section: a bare Starlette app returning a constant.

Served by uvicorn as ``importjob serve`` is (one process, the same loop and
HTTP implementation), so the two differ by what the handler does.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# About the size of a job's JSON without entries: the response costs the same to send.
_CONSTANT = {"id": "0" * 36, "status": "processing", "filename": "bench.csv", "counts": [0] * 40}


async def constant(request: Request) -> JSONResponse:
    """Return the same small JSON object every time."""
    return JSONResponse(_CONSTANT)


app = Starlette(routes=[Route("/", constant)])
