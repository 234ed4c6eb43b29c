"""Where the dashboard is: the path below its mount point, and the prefix of its links."""

from __future__ import annotations

from urllib.parse import quote

from starlette.types import Scope


def route_path(scope: Scope) -> str:
    """Return the request's path below the dashboard's mount point (``/`` at the top)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def base_path(scope: Scope) -> str | None:
    """Return the path every link of the dashboard starts with ("" at the top), or None.

    It is the ASGI ``root_path`` (the host's mount prefix, after a proxy's),
    percent-encoded (a backslash, a ``%`` or a ``?`` is inert in it). None
    when it is not a plain absolute path: one with a scheme, an empty
    segment (``//host``) or a ``.`` or ``..`` segment would make the links
    leave the mount.
    """
    root: str = scope.get("root_path", "")
    if root in ("", "/"):
        return ""
    base = quote(root.removesuffix("/"), safe="/")
    segments = base.split("/")
    if segments[0] != "" or any(part in ("", ".", "..") for part in segments[1:]):
        return None
    return base
