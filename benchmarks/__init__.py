"""The benchmark suite: ``tox -e bench`` (or ``python -m benchmarks``).

Measures importjob against the floor under it, in one run against one
server, and prints one table with a verdict per target (then the query
plans). Exits 1 when a target is missed. Never part of the test run: timings
do not belong in tests.

The server is the one PG* names (default 127.0.0.1:5432, user postgres); the
suite creates and drops its own databases, ``importjob_bench*``.

One module per section, each named by its ``SECTION.name`` (``--only
tracker`` runs that one) and run in the order of `benchmarks.__main__.SECTIONS`;
`benchmarks._harness` holds what they share.
"""
