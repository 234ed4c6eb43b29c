"""Times as the pages show them: relative text, the exact moment on hover.

The page's script writes the same text from the same rules (``ago`` and
``exact`` in app.js), so a page reads the same before and after it runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

# The largest unit first: "3 min ago", never "3 min 12 s ago".
_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def _moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC)


def ago(iso: str, now: datetime) -> str:
    """Return how long before ``now`` the ISO time ``iso`` was, as "3 min ago"."""
    # A time a little ahead of this clock (another host's) reads as now.
    seconds = max(0, int((now - _moment(iso)).total_seconds()))
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def exact(iso: str) -> str:
    """Return the ISO time ``iso`` to the second, in UTC, as people write it."""
    return _moment(iso).strftime("%Y-%m-%d %H:%M:%S UTC")
