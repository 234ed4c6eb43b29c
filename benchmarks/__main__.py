"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only NAME ...]``."""

from __future__ import annotations

import argparse
import sys

from benchmarks import (
    async_calls,
    chunks,
    error_log,
    errors,
    peer,
    per_call,
    resume,
    table_size,
    tracker,
    web,
    worker,
    workers,
    writes,
)
from benchmarks._harness import (
    Report,
    Section,
    drop_database,
    exclusive_run,
    fresh_database,
    machine,
    print_report,
)

# The order the sections run in; --only picks them by name.
SECTIONS: tuple[Section, ...] = (
    per_call.SECTION,
    tracker.SECTION,
    table_size.SECTION,
    workers.SECTION,
    errors.SECTION,
    async_calls.SECTION,
    writes.SECTION,
    error_log.SECTION,
    resume.SECTION,
    chunks.SECTION,
    worker.SECTION,
    peer.SECTION,
    web.SECTION,
)


NAMES = [section.name for section in SECTIONS]


def main(argv: list[str] | None = None) -> int:
    """Run the sections asked for, print the table, return 1 when a target was missed."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="The importjob benchmark suite."
    )
    parser.add_argument("--quick", action="store_true", help="Smaller sizes, for a smoke run.")
    parser.add_argument(
        "--only",
        action="append",
        choices=NAMES,
        metavar="NAME",
        help="Run the section NAME only (repeatable), to look at one measure again: "
        + ", ".join(f"{section.name} ({section.title})" for section in SECTIONS),
    )
    args = parser.parse_args(argv)
    with exclusive_run():
        return _run(args.only, quick=args.quick)


def _run(only: list[str] | None, *, quick: bool) -> int:
    url = fresh_database()
    report = Report()
    try:
        for section in SECTIONS:
            if only and section.name not in only:
                continue
            print(f"{section.name}: {section.title}", flush=True)
            report.section = section.name
            section.run(url, report, quick=quick)
        print_report(report, machine())
    finally:
        drop_database()
    return 0 if all(row.ok for row in report.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
