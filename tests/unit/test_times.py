"""The pages' relative times, as the server writes them (app.js writes the same)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from importjob.web._times import ago, exact

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before", "shown"),
    [
        (timedelta(0), "just now"),
        (timedelta(seconds=59), "59 s ago"),
        (timedelta(minutes=3, seconds=12), "3 min ago"),
        (timedelta(hours=2, minutes=59), "2 h ago"),
        (timedelta(days=9, hours=23), "9 d ago"),
        # Another host's clock a little ahead reads as now, never "in -2 s".
        (timedelta(seconds=-2), "just now"),
    ],
)
def test_ago_says_the_largest_unit(before: timedelta, shown: str) -> None:
    assert ago((NOW - before).isoformat(), NOW) == shown


def test_exact_is_utc_to_the_second_whatever_the_offset() -> None:
    elsewhere = datetime(2026, 3, 4, 14, 0, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert exact(elsewhere.isoformat()) == "2026-03-04 12:00:05 UTC"
    assert ago(elsewhere.isoformat(), NOW) == "just now"
