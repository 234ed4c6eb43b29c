"""Write the HTTP API's table of routes from the application's own route list.

A page holding the line ``<!-- http-routes -->`` gets, in its place, one row
per route of `importjob.web.routes.ROUTES`: its methods, its path and the
handler's docstring, which begins with the request it answers. So the
reference lists exactly the routes the server has.
"""

from __future__ import annotations

import inspect
from typing import Any

_MARKER = "<!-- http-routes -->"


def _table() -> str:
    """Return the routes as a Markdown table."""
    from importjob.web.routes import ROUTES  # noqa: PLC0415 - only pages that ask need it

    lines = ["| method | path | answer |", "|---|---|---|"]
    for route in ROUTES:
        methods = ", ".join(sorted((route.methods or set()) - {"HEAD"}))
        doc = inspect.getdoc(route.endpoint) or ""
        summary = doc.split("\n\n", 1)[0].replace("\n", " ")
        # The docstring names the request first ("GET /api/jobs?...: ..."); the
        # columns say the method and path already.
        _, sep, answer = summary.partition(": ")
        lines.append(f"| {methods} | `{route.path}` | {(answer if sep else summary).strip()} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker with the table of routes."""
    return markdown.replace(_MARKER, _table()) if _MARKER in markdown else markdown
