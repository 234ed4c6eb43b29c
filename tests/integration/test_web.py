"""`importjob serve`, over HTTP: a real server process, a real PostgreSQL, an HTTP client."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from importjob import Chunk, ImportJob, ImportJobRepository, ImportJobStatus
from importjob.exceptions import ImportValidationError
from importjob.web import POOL_SIZE, is_loopback

S = ImportJobStatus
COMMAND = Path(sys.executable).with_name("importjob")
HOSTILE = '<script>window.pwned=1</script>"\'><img src=x onerror="window.pwned=2">'
Serve = Callable[..., Any]
# A followed job is read at least this often without a notification (README),
# and a read on a busy machine of two shared cores may come this much later.
FALLBACK_PROMISE = 5.0
FALLBACK_MARGIN = 2.0


def client(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30)


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """Yield each server-sent event of a stream as (event, data)."""
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data += line.partition(":")[2].strip()
        elif line == "" and data:
            yield name, json.loads(data)
            name, data = "message", ""


def started(repo: ImportJobRepository, **fields: Any) -> ImportJob:
    job = repo.create(ImportJob(source_type="csv", filename="pairs.csv", **fields))
    return repo.start(job.id, worker_id="worker-1")


def sessions(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT application_name, count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE 'importjob serve%'"
        " GROUP BY application_name"
    ).fetchall()
    return dict(rows)


def test_banner_says_loopback_database_and_read_only(serve: Serve, db_url: str) -> None:
    server = serve()
    assert server.banner[0].startswith("importjob serve: http://127.0.0.1:")
    assert "loopback only" in server.banner[0]
    assert server.banner[1].startswith("database: postgresql://")
    assert server.banner[2].startswith("read-only")
    assert server.token is None
    assert is_loopback("localhost")
    assert is_loopback("::1")
    assert not is_loopback("0.0.0.0")  # noqa: S104 - the check, not a bind
    assert not is_loopback("example.org")
    everywhere = serve("--host", "0.0.0.0")  # noqa: S104 - the warning is under test
    assert "NOT loopback" in everywhere.banner[0]


def test_a_foreign_host_name_is_refused_on_loopback(serve: Serve) -> None:
    server = serve()
    with client(server) as http:
        # DNS rebinding: another site's name, resolved to 127.0.0.1 by its owner.
        rebound = http.get("/api/jobs", headers={"Host": "evil.example"})
        assert rebound.status_code == 400
        assert "evil" not in rebound.text
        port = server.base_url.rsplit(":", 1)[1]
        assert http.get("/healthz", headers={"Host": f"localhost:{port}"}).status_code == 200
    everywhere = serve("--host", "0.0.0.0")  # noqa: S104 - any name is fine off loopback
    with client(everywhere) as http:
        assert http.get("/healthz", headers={"Host": "imports.example"}).status_code == 200


def test_a_port_taken_is_one_line_error(serve: Serve, db_url: str) -> None:
    server = serve()
    port = server.base_url.rsplit(":", 1)[1]
    taken = subprocess.run(
        [str(COMMAND), "serve", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DATABASE_URL": db_url},
        check=False,
    )
    assert taken.returncode == 2
    assert taken.stderr.startswith(f"importjob: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in taken.stderr


def test_jobs_newest_first_filtered_and_limited(serve: Serve, repo: ImportJobRepository) -> None:
    first = repo.create(ImportJob(source_type="csv", filename="a.csv"))
    second = started(repo, total_rows=10)
    third = repo.create(ImportJob(source_type="json", filename="c.json"))
    with client(serve()) as http:
        listed = http.get("/api/jobs").json()
        assert [job["id"] for job in listed] == [str(third.id), str(second.id), str(first.id)]
        assert "errors" not in listed[0]
        assert listed[1]["status"] == "processing"
        assert listed[1]["worker_id"] == "worker-1"
        pending = http.get("/api/jobs", params={"status": "pending", "limit": 1}).json()
        assert [job["id"] for job in pending] == [str(third.id)]
        page = http.get("/", params={"status": "processing"})
        assert page.status_code == 200
        assert str(second.id) in page.text
        assert str(first.id) not in page.text


def test_jobs_filtered_by_owner_and_metadata(serve: Serve, repo: ImportJobRepository) -> None:
    def job(**fields: Any) -> ImportJob:
        return repo.create(ImportJob(source_type="csv", filename="f.csv", **fields))

    faq = job(owner="acme", metadata={"ds": "faq", "n": 7})
    text = job(owner="acme", metadata={"ds": "faq", "n": "7"})
    theirs = job(owner="other", metadata={"ds": "faq"})
    with client(serve()) as http:

        def ids(**params: str) -> list[str]:
            answer = http.get("/api/jobs", params=params)
            assert answer.status_code == 200, answer.text
            return [listed["id"] for listed in answer.json()]

        assert ids(owner="acme") == [str(text.id), str(faq.id)]
        assert ids(**{"meta.ds": "faq"}) == [str(theirs.id), str(text.id), str(faq.id)]
        assert ids(owner="acme", **{"meta.n": "7"}) == [str(faq.id)]
        assert ids(**{"meta.n": '"7"'}) == [str(text.id)]
        assert ids(owner="nobody") == []
        page = http.get("/", params={"owner": "other", "meta": "ds=faq"})
        assert page.status_code == 200
        assert str(theirs.id) in page.text
        assert str(faq.id) not in page.text
        assert 'value="ds=faq"' in page.text  # the form shows the filter it applied
        refused = http.get("/", params={"owner": "a\x00b"})
        assert refused.status_code == 400
        assert refused.headers["content-type"].startswith("text/html")


def test_jobs_filtered_by_part_of_the_file_name(serve: Serve, repo: ImportJobRepository) -> None:
    faq = repo.create(ImportJob(source_type="csv", filename="FAQ-2026.csv"))
    repo.create(ImportJob(source_type="csv", filename="pairs.csv"))
    with client(serve()) as http:
        listed = http.get("/api/jobs", params={"filename": "faq"}).json()
        assert [job["id"] for job in listed] == [str(faq.id)]
        # The form sends every field: an empty one filters nothing.
        assert len(http.get("/api/jobs", params={"filename": ""}).json()) == 2
        page = http.get("/", params={"filename": "faq", "status": ""}).text
        assert str(faq.id) in page
        assert "pairs.csv" not in page
        assert 'name="filename" value="faq"' in page
        refused = http.get("/", params={"filename": "a\x00b"})
        assert refused.status_code == 400
        assert "filename" in refused.text


def _counts(page: str) -> dict[str, tuple[str, str]]:
    """Return each status's count on a list page, with the link a click follows."""
    found = re.findall(
        r'<a href="([^"]*)" data-status-count="(\w+)"[^>]*>.*?<strong>([^<]*)</strong>',
        page,
        flags=re.S,
    )
    return {status: (count, html.unescape(link)) for link, status, count in found}


def test_the_list_page_counts_each_status_and_a_click_filters(
    serve: Serve, repo: ImportJobRepository
) -> None:
    for _ in range(2):
        repo.create(ImportJob(source_type="csv", filename="faq.csv"))
    running = started(repo, total_rows=10)
    failed = started(repo, total_rows=10)
    repo.update_status(failed.id, ImportJobStatus.FAILED)
    with client(serve()) as http:
        counts = _counts(http.get("/").text)
        assert {status: count for status, (count, _) in counts.items()} == {
            "pending": "2",
            "processing": "1",
            "completed": "0",
            "failed": "1",
            "cancelled": "0",
        }
        # A count's link filters by its status and keeps the page's other filters.
        counts = _counts(http.get("/", params={"limit": "20", "status": "failed"}).text)
        link = counts["processing"][1]
        assert link == "/?status=processing&limit=20"
        page = http.get(link).text
        assert str(running.id) in page
        assert str(failed.id) not in page
        assert 'aria-current="page"><span class="status status-processing">' in page


def test_the_job_page_shows_metadata_escaped_and_outcomes(
    serve: Serve, repo: ImportJobRepository
) -> None:
    job = repo.create(
        ImportJob(
            source_type="csv",
            filename="f.csv",
            owner="<i>acme</i>",
            metadata={"label": "<script>alert(1)</script>"},
        )
    )
    repo.advance(job.id, 5, 3, 0, skipped=2, outcomes={"created": 3, "duplicate": 2})
    with client(serve()) as http:
        page = http.get(f"/jobs/{job.id}").text
        served = http.get(f"/api/jobs/{job.id}").json()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<i>acme</i>" not in page
    assert "created 3 · duplicate 2" in page
    assert (served["owner"], served["metadata"]) == ("<i>acme</i>", job.metadata)
    assert (served["skipped_count"], served["outcomes"]) == (2, {"created": 3, "duplicate": 2})


def test_a_chunked_import_shows_its_sums_and_its_chunks(
    serve: Serve, repo: ImportJobRepository
) -> None:
    parent, (a, b) = repo.create_chunked(
        ImportJob(source_type="csv", filename="big.csv"),
        [Chunk(10, {"rows": [0, 10]}), Chunk(10, {"rows": [10, 20]})],
    )
    repo.start(a.id, "w1")
    repo.advance(a.id, 10, 9, 1)
    repo.update_status(a.id, ImportJobStatus.COMPLETED)
    repo.start(b.id, "w2")
    repo.advance(b.id, 4, 4, 0)
    with client(serve()) as http:
        served = http.get(f"/api/jobs/{parent.id}").json()
        chunks = http.get(f"/api/jobs/{parent.id}/chunks").json()
        page = http.get(f"/jobs/{parent.id}").text
        chunk_page = http.get(f"/jobs/{b.id}").text
        assert http.get(f"/api/jobs/{b.id}/chunks").json() == []
        assert http.get(f"/api/jobs/{uuid.uuid4()}/chunks").status_code == 404
    assert (served["status"], served["processed_rows"], served["total_rows"]) == (
        "processing",
        14,
        20,
    )
    assert (served["chunks"], served["error_count"]) == (2, 1)
    assert [(c["chunk_index"], c["status"], c["processed_rows"]) for c in chunks] == [
        (0, "completed", 10),
        (1, "processing", 4),
    ]
    assert chunks[1]["chunk"] == {"rows": [10, 20]}
    assert "completed 1 · processing 1" in page
    assert f'href="/jobs/{b.id}"' in page
    assert f'href="/jobs/{parent.id}"' in chunk_page
    assert "chunk 2 of" in chunk_page


def test_job_json_is_what_show_json_prints(
    serve: Serve, repo: ImportJobRepository, db_url: str
) -> None:
    job = started(repo, total_rows=4)
    repo.advance(job.id, 4, 3, 1, entries=[ImportValidationError(2, "answer", "empty")])
    repo.update_status(job.id, S.COMPLETED)
    shown = subprocess.run(
        [str(COMMAND), "--database", db_url, "show", "--json", str(job.id)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    with client(serve()) as http:
        served = http.get(f"/api/jobs/{job.id}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    # An ended job's elapsed time and rate are fixed: the two are equal, field for field.
    assert served.json() == json.loads(shown.stdout)
    assert served.json()["error_summary"][0]["message"] == "empty"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/jobs/not-a-uuid", "id"),
        ("/api/jobs/1234", "id"),
        ("/api/jobs/not-a-uuid/errors", "id"),
        ("/api/jobs/not-a-uuid/events", "id"),
        ("/api/jobs/not-a-uuid/errors.csv", "id"),
        ("/api/jobs?limit=0", "limit"),
        ("/api/jobs?limit=-3", "limit"),
        ("/api/jobs?limit=ten", "limit"),
        ("/api/jobs?limit=100000", "limit"),
        ("/api/jobs?limit=%EF%BC%95", "limit"),
        ("/api/jobs?status=done", "status"),
        ("/api/jobs?status=%27%3B%20DROP%20TABLE%20import_job%3B--", "status"),
        ("/api/jobs/00000000-0000-0000-0000-000000000001/errors?after=x", "after"),
        ("/api/jobs/00000000-0000-0000-0000-000000000001/errors?after=-1", "after"),
        (
            "/api/jobs/00000000-0000-0000-0000-000000000001/errors?after=9223372036854775808",
            "after",
        ),
        ("/api/jobs/00000000-0000-0000-0000-000000000001/errors?limit=0", "limit"),
        ("/api/jobs/00000000-0000-0000-0000-000000000001/errors?limit=-1", "limit"),
        ("/api/jobs/00000000-0000-0000-0000-000000000001/errors?limit=1001", "limit"),
        ("/api/events", "id"),
        ("/api/events?id=nope", "id"),
        ("/api/jobs?owner=" + "x" * 201, "owner"),
        ("/api/jobs?owner=a%0Ab", "owner"),
        ("/api/jobs?meta.=faq", "meta"),
        ("/api/jobs?meta=novalue", "meta"),
        ("/api/jobs?meta.big=" + "x" * 9000, "meta"),
        ("/api/jobs?filename=" + "x" * 256, "filename"),
        ("/api/jobs?filename=a%00b", "filename"),
        ("/api/jobs/events?filename=a%00b", "filename"),
    ],
)
def test_bad_input_is_400_naming_the_field(serve: Serve, path: str, field: str) -> None:
    with client(serve()) as http:
        answer = http.get(path)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert answer.json()["error"].startswith(f"{field}: ")


def test_unknown_jobs_are_404_and_bad_pages_400(serve: Serve, conn: Any) -> None:
    unknown = "00000000-0000-0000-0000-000000000001"
    with client(serve()) as http:
        for path in ("", "/errors", "/events", "/errors.csv"):
            answer = http.get(f"/api/jobs/{unknown}{path}")
            assert answer.status_code == 404, path
            assert answer.json() == {"error": f"no import job {unknown}"}
        assert http.post(f"/api/jobs/{unknown}/cancel").status_code == 403  # read-only first
        page = http.get(f"/jobs/{unknown}")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        bad = http.get("/jobs/%3Cb%3Ex")
        assert bad.status_code == 400
        assert "<b>x" not in bad.text
        assert "&lt;b&gt;x" in bad.text
        assert http.get("/nowhere").status_code == 404
        assert http.delete("/api/jobs").status_code == 405
    # Nothing was written by any of it.
    assert conn.execute("SELECT count(*) FROM import_job").fetchone() == (0,)


def test_errors_paged_and_downloaded_whole(serve: Serve, repo: ImportJobRepository) -> None:
    job = started(repo, total_rows=10)
    entries = [
        ImportValidationError(row, "answer", f"bad {row}", value=HOSTILE) for row in range(5)
    ]
    repo.advance(job.id, 5, 0, 5, entries=entries)
    with client(serve()) as http:
        first = http.get(f"/api/jobs/{job.id}/errors", params={"limit": 2}).json()
        assert [e["n"] for e in first["errors"]] == [1, 2]
        assert first["next_after"] == 2
        rest = http.get(f"/api/jobs/{job.id}/errors", params={"after": 2, "limit": 3}).json()
        assert [e["entry"]["message"] for e in rest["errors"]] == ["bad 2", "bad 3", "bad 4"]
        assert rest["next_after"] == 3 + 2
        past = http.get(f"/api/jobs/{job.id}/errors", params={"after": 5}).json()
        assert past == {"errors": [], "next_after": None}
        download = http.get(f"/api/jobs/{job.id}/errors.csv")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == (
        f'attachment; filename="errors-{job.id}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["message"] for row in rows] == [f"bad {n}" for n in range(5)]
    assert {row["value"] for row in rows} == {HOSTILE}


def test_job_page_shows_reasons_and_pages_of_errors(
    serve: Serve, repo: ImportJobRepository
) -> None:
    job = started(repo, total_rows=100)
    entries = [ImportValidationError(row, "answer", "empty") for row in range(60)]
    repo.advance(job.id, 61, 1, 60, entries=entries)
    with client(serve()) as http:
        page = http.get(f"/jobs/{job.id}")
        assert page.status_code == 200
        assert "61.0 %" in page.text
        assert "<td>60</td><td>ImportValidationError</td><td>answer</td><td>empty</td>" in page.text
        assert f'href="/jobs/{job.id}?after=50" data-next' in page.text
        second = http.get(f"/jobs/{job.id}", params={"after": 50})
        assert second.text.count("<td>ImportValidationError</td><td>empty</td>") == 10
        assert "data-next" not in second.text
        assert "data-cancel" not in second.text  # read-only: no cancel button


def test_job_page_shows_checkpoint_and_fingerprint(serve: Serve, repo: ImportJobRepository) -> None:
    job = repo.create(
        ImportJob(source_type="csv", filename="f.csv", source_sha256="ab" * 32, source_size=12345)
    )
    repo.advance(job.id, 10, 10, checkpoint={"row": 10, "offset": 512})
    bare = repo.create(ImportJob(source_type="csv", filename="g.csv"))
    with client(serve()) as http:
        page = http.get(f"/jobs/{job.id}").text
        assert '<dd data-field="checkpoint">{&#34;row&#34;: 10, &#34;offset&#34;: 512}</dd>' in page
        assert f"sha256 {'ab' * 32} · 12,345 bytes" in page
        shown = http.get(f"/api/jobs/{job.id}").json()
        assert shown["checkpoint"] == {"row": 10, "offset": 512}
        assert (shown["source_sha256"], shown["source_size"]) == ("ab" * 32, 12345)
        assert '<dd data-field="checkpoint">\u2013</dd>' in http.get(f"/jobs/{bare.id}").text


def test_hostile_values_are_escaped(serve: Serve, repo: ImportJobRepository) -> None:
    job = repo.create(
        ImportJob(
            source_type="csv",
            filename=HOSTILE,
            total_rows=3,
            checkpoint=HOSTILE,
            owner=HOSTILE,
            metadata={HOSTILE: HOSTILE},
        )
    )
    repo.add_error(
        job.id, {"type": HOSTILE, "field": HOSTILE, "message": HOSTILE, "value": HOSTILE}
    )
    repo.update_progress(job.id, 1, 0, 1)
    with client(serve()) as http:
        # The list's filter form shows the owner and the metadata asked for, too.
        filtered = {"owner": HOSTILE, f"meta.{HOSTILE}": HOSTILE}
        for path, params in ((f"/jobs/{job.id}", {}), ("/", {}), ("/", filtered)):
            page = http.get(path, params=params)
            assert page.status_code == 200
            assert "<script>window" not in page.text
            assert "<img" not in page.text
            assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page.text
            # The browser refuses inline script and foreign sources, whatever gets through.
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy
            assert "unsafe-inline" not in policy
            assert str(job.id) in page.text
        # The API hands the values back as they were stored.
        served = http.get(f"/api/jobs/{job.id}").json()
        assert (served["filename"], served["owner"]) == (HOSTILE, HOSTILE)
        assert served["metadata"] == {HOSTILE: HOSTILE}


def test_events_push_each_change_until_the_job_ends(
    serve: Serve, repo: ImportJobRepository, connect: Callable[[], Any]
) -> None:
    job = started(repo, total_rows=3)
    writer = ImportJobRepository(connect())
    seen: list[dict[str, Any]] = []
    with client(serve()) as http, http.stream("GET", f"/api/jobs/{job.id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for name, snapshot in events(stream):
            assert name == "job"
            seen.append(snapshot)
            # The next change only once this one is seen: every step is pushed.
            if len(seen) == 1:
                writer.advance(job.id, 1, 1, 0)
            elif len(seen) == 2:
                writer.advance(job.id, 1, 0, 1, entries=[ImportValidationError(2, "q", "empty")])
            elif len(seen) == 3:
                writer.update_status(job.id, S.COMPLETED)
        shown = http.get(f"/api/jobs/{job.id}").json()
    # The stream ended by itself after the terminal snapshot.
    assert [s["processed_rows"] for s in seen] == [0, 1, 2, 2]
    assert [s["status"] for s in seen][-1] == "completed"
    # Each snapshot has the shape of show --json (entries left out: a snapshot reads none).
    assert all(set(s) == set(shown) for s in seen)
    assert seen[0]["error_summary"] == []
    # Reasons read again when the errors grew, at the latest for the last snapshot.
    assert seen[-1]["error_summary"] == shown["error_summary"]
    assert shown["error_summary"][0]["message"] == "empty"


def test_a_change_that_notifies_nobody_reaches_a_stream_within_the_fallback(
    serve: Serve, repo: ImportJobRepository, connect: Callable[[], Any]
) -> None:
    job = started(repo)
    quiet = connect()
    # Triggers do not fire for this session (as for a logical replication
    # apply): only the listener's fallback read can show its change.
    quiet.execute("SET session_replication_role = replica")
    seen: list[int] = []
    with client(serve()) as http, http.stream("GET", f"/api/jobs/{job.id}/events") as stream:
        for _, snapshot in events(stream):
            seen.append(snapshot["processed_rows"])
            if len(seen) == 1:
                quiet.execute("UPDATE import_job SET processed_rows = 5 WHERE id = %s", [job.id])
                changed_at = time.monotonic()
            elif snapshot["processed_rows"] == 5:
                arrived = time.monotonic()
                break
    assert seen == [0, 5]
    assert arrived - changed_at <= FALLBACK_PROMISE + FALLBACK_MARGIN


def test_an_ended_job_streams_one_snapshot_and_a_deleted_one_says_gone(
    serve: Serve, repo: ImportJobRepository, conn: Any
) -> None:
    ended = started(repo)
    repo.update_status(ended.id, S.FAILED)
    doomed = started(repo)
    with client(serve()) as http:
        with http.stream("GET", f"/api/jobs/{ended.id}/events") as stream:
            assert [(n, s["status"]) for n, s in events(stream)] == [("job", "failed")]
        with http.stream("GET", f"/api/events?id={doomed.id}&id={doomed.id}") as stream:
            for name, data in events(stream):
                if name == "job":
                    conn.execute("DELETE FROM import_job WHERE id = %s", (doomed.id,))
                else:
                    assert (name, data["id"]) == ("gone", str(doomed.id))


def test_many_streams_share_one_listen_connection_and_one_read_per_change(
    serve: Serve, repo: ImportJobRepository, conn: Any, connect: Callable[[], Any]
) -> None:
    jobs = [started(repo, total_rows=2) for _ in range(3)]
    server = serve()
    writer = ImportJobRepository(connect())
    streams = 30
    ready = threading.Barrier(streams + 1)
    received: list[list[dict[str, Any]]] = [[] for _ in range(streams)]

    def follow(index: int) -> None:
        job = jobs[index % 2]  # 15 streams on each of two jobs
        with client(server) as http, http.stream("GET", f"/api/jobs/{job.id}/events") as stream:
            for _, snapshot in events(stream):
                received[index].append(snapshot)
                if len(received[index]) == 1:
                    ready.wait()

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=60)
    # The list page's stream follows the third job, on the same connection.
    with client(server) as http, http.stream("GET", f"/api/events?id={jobs[2].id}") as listing:
        listed = events(listing)
        first = next(listed)
        assert first[1]["id"] == str(jobs[2].id)
        held = sessions(conn)
        assert held["importjob serve listener"] == 1
        assert held.get("importjob serve", 0) <= POOL_SIZE
        before = _metric(http, "importjob_serve_snapshot_reads")
        assert _metric(http, "importjob_serve_followed_jobs") == 3
        for job in jobs[:2]:
            writer.advance(job.id, 2, 2, 0)
            writer.update_status(job.id, S.COMPLETED)
        for thread in threads:
            thread.join(timeout=60)
        after = _metric(http, "importjob_serve_snapshot_reads")
        writer.update_status(jobs[2].id, S.CANCELLED)
        assert [s["status"] for _, s in listed][-1] == "cancelled"
    for snapshots in received:
        assert snapshots[-1]["status"] == "completed"
        assert snapshots[-1]["processed_rows"] == 2
    # Four changes in all for 30 streams: a few reads (a burst may fold into
    # one, a fallback read may fall in), never one per stream.
    assert after - before <= 8


def _metric(http: httpx.Client, name: str, labels: str = "") -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{labels} "):
            return float(line.split()[-1])
    raise AssertionError(f"no {name}{labels} in /metrics")


def test_metrics_count_jobs_rows_and_stalled_work(
    serve: Serve, repo: ImportJobRepository, conn: Any
) -> None:
    waiting = repo.create(ImportJob(source_type="csv", filename="w.csv"))
    stalled = started(repo, total_rows=10)
    repo.advance(stalled.id, 8, 5, 2, skipped=1)
    started(repo)
    conn.execute(
        "UPDATE import_job SET created_at = now() - interval '1 hour' WHERE id = %s", (waiting.id,)
    )
    conn.execute(
        "UPDATE import_job SET heartbeat_at = now() - interval '6 minutes' WHERE id = %s",
        (stalled.id,),
    )
    with client(serve()) as http:
        answer = http.get("/metrics")
        assert answer.headers["content-type"].startswith("text/plain")
        assert _metric(http, "importjob_jobs", '{status="pending"}') == 1
        assert _metric(http, "importjob_jobs", '{status="processing"}') == 2
        assert _metric(http, "importjob_jobs", '{status="completed"}') == 0
        assert _metric(http, "importjob_rows_processed", '{status="processing"}') == 8
        assert _metric(http, "importjob_rows_failed", '{status="processing"}') == 2
        assert _metric(http, "importjob_rows_skipped", '{status="processing"}') == 1
        assert _metric(http, "importjob_rows_skipped", '{status="pending"}') == 0
        assert 3600 <= _metric(http, "importjob_oldest_pending_age_seconds") < 3700
        assert _metric(http, "importjob_processing_without_heartbeat") == 1
        assert http.get("/healthz").json()["status"] == "ok"


def test_cancel_is_read_only_by_default(serve: Serve, repo: ImportJobRepository) -> None:
    job = started(repo)
    with client(serve()) as http:
        refused = http.post(f"/api/jobs/{job.id}/cancel", headers={"X-Importjob-Token": "x"})
    assert refused.status_code == 403
    assert "--allow-cancel" in refused.json()["error"]
    assert repo.get_by_id(job.id).status is S.PROCESSING  # type: ignore[union-attr]


def test_cancel_needs_the_token_in_a_header(serve: Serve, repo: ImportJobRepository) -> None:
    job = started(repo)
    server = serve("--allow-cancel")
    assert server.token
    assert len(server.token) >= 32
    with client(server) as http:
        page = http.get(f"/jobs/{job.id}").text
        assert "data-cancel data-asks-token" in page  # the button asks for the token
        assert http.post(f"/api/jobs/{job.id}/cancel").status_code == 403
        # A cookie, a query value or a form field carries no authority.
        http.cookies.set("X-Importjob-Token", server.token)
        assert http.post(f"/api/jobs/{job.id}/cancel?token={server.token}").status_code == 403
        wrong = http.post(f"/api/jobs/{job.id}/cancel", headers={"X-Importjob-Token": "nope"})
        assert wrong.status_code == 403
        assert http.get("/api/jobs").json()[0]["status"] == "processing"
        header = {"X-Importjob-Token": server.token}
        done = http.post(f"/api/jobs/{job.id}/cancel", headers=header)
        assert done.status_code == 200
        assert done.json()["status"] == "cancelled"
        again = http.post(f"/api/jobs/{job.id}/cancel", headers=header)
        assert again.status_code == 409
        assert "cancelled" in again.json()["error"]
    assert repo.get_by_id(job.id).status is S.CANCELLED  # type: ignore[union-attr]
    # Every attempt, in the server's output: the operator sees who cancelled what.
    audit = [line for line in server.finish().splitlines() if "cancel " in line]
    assert len(audit) == 5
    assert (
        audit[0]
        == f"importjob serve: cancel refused: no right to cancel: user=None job={job.id} owner=None"
    )
    assert audit[3] == f"importjob serve: cancel allowed: user=None job={job.id} owner=None"


def test_a_password_never_appears(serve: Serve, db_url: str, repo: ImportJobRepository) -> None:
    # The test server trusts every connection, so any password gets in.
    secret = "Sup3rS3cretPw"  # noqa: S105 - the password that must not show
    with_password = db_url.replace("postgres@", f"postgres:{secret}@", 1)
    assert secret in with_password
    job = started(repo)
    server = serve(url=with_password)
    assert secret not in "\n".join(server.banner)
    assert "***" in server.banner[1]
    with client(server) as http:
        bodies = [
            http.get(path).text
            for path in ("/", f"/jobs/{job.id}", "/api/jobs", f"/api/jobs/{job.id}", "/metrics")
        ]
        bodies.append(http.get("/healthz").text)
    assert not any(secret in body for body in bodies)
    assert secret not in server.finish()


def test_a_stream_that_ends_lets_go_of_its_channel(serve: Serve, repo: ImportJobRepository) -> None:
    job = started(repo)
    with client(serve()) as http:
        with http.stream("GET", f"/api/jobs/{job.id}/events") as stream:
            snapshots = events(stream)  # held: a generator dropped closes the stream
            next(snapshots)
            assert _metric(http, "importjob_serve_followed_jobs") == 1
            assert _metric(http, "importjob_serve_listened_jobs") == 1
        # The client is gone: the server notices, then UNLISTENs.
        deadline = time.monotonic() + 30
        while _metric(http, "importjob_serve_listened_jobs") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _metric(http, "importjob_serve_listened_jobs") == 0
        assert _metric(http, "importjob_serve_followed_jobs") == 0


def test_a_database_without_the_schema_is_503(serve: Serve, empty_db_url: str) -> None:
    server = serve(url=empty_db_url)
    with client(server) as http:
        for path in ("/api/jobs", "/healthz", "/metrics", "/"):
            answer = http.get(path)
            assert answer.status_code == 503, path
            assert "Traceback" not in answer.text
        assert http.get("/api/jobs").json() == {"error": "the database is not available"}
        # A stream waits for its first snapshot a while, then says so.
        unknown = "00000000-0000-0000-0000-000000000001"
        assert http.get(f"/api/jobs/{unknown}/events").status_code == 503
    assert "database error on /api/jobs: SchemaMissingError" in server.finish()


def test_the_listener_reconnects_and_streams_go_on(
    serve: Serve, repo: ImportJobRepository, conn: Any, connect: Callable[[], Any]
) -> None:
    job = started(repo, total_rows=2)
    writer = ImportJobRepository(connect())
    seen: list[int] = []
    with client(serve()) as http, http.stream("GET", f"/api/jobs/{job.id}/events") as stream:
        for _, snapshot in events(stream):
            seen.append(snapshot["processed_rows"])
            if len(seen) == 1:
                killed = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'importjob serve listener'"
                    " AND datname = current_database()"
                ).fetchall()
                assert killed == [(True,)]
                writer.advance(job.id, 1, 1, 0)
            elif snapshot["processed_rows"] == 1 and snapshot["status"] == "processing":
                assert http.get("/healthz").json()["listening"] is True
                writer.update_status(job.id, S.COMPLETED)
    assert seen[0] == 0
    assert seen[-1] == 1
