"""web: `importjob serve`: one job's JSON against its floor, and 500 live streams on one job.

The floor of ``GET /api/jobs/{id}`` is what it cannot do without:
``repo.get_by_id`` plus a bare Starlette handler returning a constant under
the same uvicorn, timed in alternating blocks in the same run. The streams:
500 SSE clients follow one job while a tracker flushes 1,000 times; the
server's database sessions are sampled all along.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from benchmarks._harness import Report, Section, connect, interleaved
from importjob import ImportJob, ImportJobRepository, track
from importjob.exceptions import ImportValidationError
from importjob.web import POOL_SIZE

STREAMS = 500
FLUSHES = 1000
_SERVE = os.path.join(os.path.dirname(sys.executable), "importjob")


def run(url: str, report: Report, *, quick: bool) -> None:
    """Run the section: the job's JSON against its floor, then the streams."""
    json_line(url, report, rounds=4 if quick else 12, per_round=50 if quick else 100)
    streams_lines(url, report, streams=100 if quick else STREAMS, flushes=FLUSHES)


@contextmanager
def _server(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(  # noqa: S603 - our own command line
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


@contextmanager
def serve(url: str) -> Iterator[str]:
    """Run ``importjob serve`` over ``url``; yield its base URL."""
    env = {**os.environ, "DATABASE_URL": url}
    with _server([_SERVE, "serve", "--port", "0"], env) as process:
        assert process.stdout is not None  # noqa: S101 - piped above
        banner = process.stdout.readline()
        found = re.search(r"http://\S+:(\d+)/", banner)
        if not found:
            raise RuntimeError(f"importjob serve did not start: {banner!r}")
        yield f"http://127.0.0.1:{found.group(1)}"


@contextmanager
def constant_server() -> Iterator[str]:
    """Run the bare Starlette app under uvicorn; yield its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", "benchmarks._constant_app:app"]
    command += ["--port", str(port), "--log-level", "warning"]
    with _server(command, dict(os.environ)):
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(base)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base


def json_line(url: str, report: Report, rounds: int, per_round: int) -> None:
    """GET /api/jobs/{id} against repo.get_by_id plus a constant handler."""
    conn = connect(url)
    repo = ImportJobRepository(conn)
    job = repo.create(ImportJob(source_type="csv", filename="bench.csv", total_rows=10_000))
    repo.start(job.id)
    entries = [ImportValidationError(row, "answer", "must not be empty") for row in range(10)]
    repo.advance(job.id, 5000, 4990, 10, entries=entries)
    with (
        serve(url) as base,
        constant_server() as bare,
        httpx.Client(base_url=base) as ours_client,
        httpx.Client(base_url=bare) as bare_client,
    ):
        path = f"/api/jobs/{job.id}"

        def ours(_: int) -> object:
            return ours_client.get(path).raise_for_status()

        def floor(_: int) -> object:
            repo.get_by_id(job.id)
            return bare_client.get("/").raise_for_status()

        for _ in range(50):  # warm both: prepared statements, pool, caches
            ours(0)
            floor(0)
        ours_us, floor_us = interleaved(ours, floor, rounds, per_round)
    conn.close()
    ratio = ours_us / floor_us
    report.add(
        "GET /api/jobs/{id}, median",
        f"{ours_us:.0f} µs",
        f"{floor_us:.0f} µs get_by_id + constant handler",
        ratio=ratio,
        target="≤ 2x",
        ok=ratio <= 2.0,
    )


async def _follow(
    client: httpx.AsyncClient, path: str, ready: asyncio.Event, counts: list[int]
) -> str:
    """Follow one stream to its end; return the last status it saw."""
    last = ""
    async with client.stream("GET", path) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                last = json.loads(line[5:])["status"]
                counts[0] += 1
                if counts[0] == counts[1]:
                    ready.set()
    return last


def _sessions(admin: Any, dbname: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = %s AND application_name LIKE 'importjob serve%%'",
        (dbname,),
    ).fetchone()
    return int(row[0])


def _reads(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("importjob_serve_snapshot_reads "):
            return float(line.split()[-1])
    raise RuntimeError("no importjob_serve_snapshot_reads in /metrics")


def streams_lines(url: str, report: Report, streams: int, flushes: int) -> None:
    """Follow one job from ``streams`` SSE clients while a tracker flushes ``flushes`` times."""
    conn = connect(url)
    repo = ImportJobRepository(conn)
    admin = connect(url)
    dbname = conn.info.dbname
    job = repo.create(ImportJob(source_type="csv", filename="streams.csv", total_rows=flushes))
    most = [0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            most[0] = max(most[0], _sessions(admin, dbname))
            time.sleep(0.02)

    def load() -> None:
        with track(repo, job.id, every_rows=1, every_seconds=3600) as tracker:
            for _ in range(flushes):
                tracker.ok()  # every_rows=1: each row is a flush

    async def clients(base: str) -> tuple[list[str], float, float]:
        limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams)
        timeout = httpx.Timeout(120.0)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
            ready = asyncio.Event()
            counts = [0, streams]  # snapshots received, and how many make "all started"
            tasks = [
                asyncio.create_task(_follow(client, f"/api/jobs/{job.id}/events", ready, counts))
                for _ in range(streams)
            ]
            await asyncio.wait_for(ready.wait(), 120)
            counts[1] = -1  # no more signalling
            with httpx.Client(base_url=base) as plain:
                before = await asyncio.to_thread(_reads, plain)
                started = time.perf_counter()
                await asyncio.to_thread(load)
                last = await asyncio.gather(*tasks)
                took = time.perf_counter() - started
                reads = await asyncio.to_thread(_reads, plain) - before
            return last, reads, took

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with serve(url) as base:
            last, reads, took = asyncio.run(clients(base))
    finally:
        sampling.set()
        sampler.join()
    conn.close()
    admin.close()
    completed = sum(status == "completed" for status in last)
    report.add(
        f"{streams} SSE clients, {flushes}-flush import: server DB sessions, most",
        f"{most[0]}",
        f"{POOL_SIZE} pool + 1 listener",
        ratio=None,
        target=f"≤ {POOL_SIZE + 1}",
        ok=most[0] <= POOL_SIZE + 1,
    )
    report.add(
        "clients that received the terminal snapshot",
        f"{completed}",
        f"{streams} clients",
        ratio=None,
        target="all",
        ok=completed == streams,
    )
    report.add(
        "snapshot reads for those flushes (one per change at most)",
        f"{reads:.0f}",
        f"{flushes + 2} changes, {took:.1f} s",
        ratio=None,
        target=f"≤ {flushes + 2} + s/5",
        ok=reads <= flushes + 2 + took / 5 + 1,
    )


SECTION = Section(name="web", title="importjob serve: job JSON and 500 live streams", run=run)
