// The live parts of the pages: snapshots pushed by the server (Server-Sent
// Events), written into the page with textContent only, so a job's values
// are never read as HTML. No polling: the server pushes each change.
"use strict";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const number = new Intl.NumberFormat("en-US");
// Where the dashboard is mounted ("" at the top): every URL below starts
// with it, as the page's own links do.
const base = () => document.body.dataset.base ?? "";

function text(root, field, value) {
  for (const el of root.querySelectorAll(`[data-field="${field}"]`)) {
    el.textContent = value;
  }
}

function percent(job) {
  return job.total_rows ? `${(100 * job.processed_rows / job.total_rows).toFixed(1)} %` : "–";
}

function rate(job) {
  return job.rows_per_second == null ? "–" : `${number.format(Math.round(job.rows_per_second))} rows/s`;
}

function eta(job) {
  if (TERMINAL.has(job.status) || !job.total_rows || !job.rows_per_second) return "–";
  const seconds = Math.max(0, (job.total_rows - job.processed_rows) / job.rows_per_second);
  return duration(seconds);
}

function duration(seconds) {
  seconds = Math.round(seconds);
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h ${Math.floor(seconds % 3600 / 60)} min`;
  if (seconds >= 60) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${seconds} s`;
}

function age(iso) {
  const moment = Date.parse(iso);
  return Number.isNaN(moment) ? "–" : `${duration((Date.now() - moment) / 1000)} ago`;
}

function progress(job) {
  const processed = number.format(job.processed_rows);
  return job.total_rows ? `${processed} / ${number.format(job.total_rows)}` : processed;
}

function show(root, job) {
  root.dataset.status = job.status;
  const status = root.querySelector('[data-field="status"]');
  if (status) status.className = `status status-${job.status}`;
  text(root, "status", job.status);
  const bar = root.querySelector('[data-field="bar"]');
  if (bar) {
    bar.max = job.total_rows || 1;
    bar.value = job.total_rows ? job.processed_rows : (job.status === "completed" ? 1 : 0);
  }
  text(root, "percent", percent(job));
  text(root, "progress", progress(job));
  text(root, "success_count", number.format(job.success_count));
  text(root, "error_count", number.format(job.error_count));
  if ("skipped_count" in job) text(root, "skipped_count", number.format(job.skipped_count));
  if ("outcomes" in job) {
    const labels = Object.keys(job.outcomes).sort();
    text(root, "outcomes", labels.length ? labels.map((label) => `${label} ${number.format(job.outcomes[label])}`).join(" · ") : "–");
  }
  text(root, "errors_logged", number.format(job.errors_logged));
  text(root, "rate", rate(job));
  text(root, "eta", eta(job));
  for (const field of ["created_at", "started_at", "completed_at", "heartbeat_at", "worker_id"]) {
    text(root, field, job[field] == null ? "–" : job[field]);
  }
  // Any JSON value: shown as JSON, as the page first drew it.
  if ("checkpoint" in job) text(root, "checkpoint", job.checkpoint == null ? "–" : JSON.stringify(job.checkpoint));
  if ("metadata" in job) text(root, "metadata", JSON.stringify(job.metadata));
}

function showReasons(page, groups) {
  const body = page.querySelector("[data-reasons] tbody");
  if (!body) return;
  body.replaceChildren();
  for (const group of groups) {
    const row = body.insertRow();
    row.insertCell().textContent = number.format(group.count);
    if (group.other) {
      const cell = row.insertCell();
      cell.colSpan = 3;
      cell.textContent = "(other reasons)";
    } else {
      for (const key of ["type", "field", "message"]) row.insertCell().textContent = group[key] ?? "–";
    }
  }
  const none = page.querySelector("[data-no-reasons]");
  if (none && groups.length) none.remove();
}

function jobPage(page) {
  const id = page.dataset.jobId;
  const cancel = page.querySelector("[data-cancel]");
  if (cancel) {
    cancel.addEventListener("click", async () => {
      const headers = {};
      if ("asksToken" in cancel.dataset) {
        const token = window.prompt("The cancel token printed by importjob serve:");
        if (!token) return;
        headers["X-Importjob-Token"] = token;
      } else if (!window.confirm("Cancel this import?")) {
        return;
      }
      const answer = await fetch(`${base()}/api/jobs/${encodeURIComponent(id)}/cancel`, {
        method: "POST",
        headers,
      });
      const body = await answer.json();
      text(page, "cancel-result", answer.ok ? "cancelled" : body.error);
    });
  }
  if (TERMINAL.has(page.dataset.status)) return;
  const events = new EventSource(`${base()}/api/jobs/${encodeURIComponent(id)}/events`);
  events.addEventListener("job", (event) => {
    const job = JSON.parse(event.data);
    show(page, job);
    // Snapshots carry the reasons when the server read them again.
    if (job.error_summary) showReasons(page, job.error_summary);
    if (TERMINAL.has(job.status)) {
      events.close();
      if (cancel) cancel.remove();
    }
  });
  events.addEventListener("gone", () => {
    events.close();
    text(page, "status", "deleted");
  });
}

// A row as jobs.html draws it, built with DOM calls: show() fills the live cells.
function jobRow(job) {
  const row = document.createElement("tr");
  row.dataset.jobId = job.id;
  row.dataset.status = job.status;
  row.dataset.createdAt = job.created_at;
  const file = row.insertCell();
  const link = document.createElement("a");
  link.href = `${base()}/jobs/${encodeURIComponent(job.id)}`;
  link.textContent = job.filename;
  const id = document.createElement("div");
  id.className = "muted id";
  id.textContent = job.id;
  file.append(link, id);
  const owner = row.insertCell();
  owner.className = "muted";
  owner.textContent = job.owner ?? "";
  const status = document.createElement("span");
  status.dataset.field = "status";
  row.insertCell().append(status);
  const bar = document.createElement("progress");
  bar.dataset.field = "bar";
  row.insertCell().append(bar);
  for (const field of ["percent", "progress", "error_count", "skipped_count", "rate", "age"]) {
    row.insertCell().dataset.field = field;
  }
  row.lastChild.className = "muted";
  show(row, job);
  text(row, "age", age(job.created_at));
  return row;
}

function jobsList(table) {
  const rows = new Map();
  for (const row of table.querySelectorAll("tr[data-job-id]")) {
    rows.set(row.dataset.jobId, row);
    text(row, "age", age(row.dataset.createdAt));
  }
  // Ages move on by themselves: the clock here, not the server.
  window.setInterval(() => {
    for (const row of rows.values()) text(row, "age", age(row.dataset.createdAt));
  }, 10000);
  // One stream for the live rows, opened again over them all when rows are added.
  let events = null;
  let open = 0;
  const follow = () => {
    if (events) events.close();
    events = null;
    const live = [...rows.values()].filter((row) => !TERMINAL.has(row.dataset.status));
    open = live.length;
    if (!open) return;
    const query = live.map((row) => `id=${encodeURIComponent(row.dataset.jobId)}`).join("&");
    const stream = new EventSource(`${base()}/api/events?${query}`);
    stream.addEventListener("job", (event) => {
      const job = JSON.parse(event.data);
      const row = rows.get(job.id);
      if (!row) return;
      show(row, job);
      if (TERMINAL.has(job.status) && --open === 0) stream.close();
    });
    stream.addEventListener("gone", () => {
      if (--open === 0) stream.close();
    });
    events = stream;
  };
  follow();
  // The jobs the list gains while open, with the page's own filters; the
  // stream tells of those already shown too, which are skipped here.
  const added = new EventSource(`${base()}/api/jobs/events${window.location.search}`);
  let again = false;
  added.addEventListener("job", (event) => {
    const job = JSON.parse(event.data);
    if (rows.has(job.id)) return;
    const row = jobRow(job);
    rows.set(job.id, row);
    table.tBodies[0].prepend(row);
    table.hidden = false;
    document.querySelector("[data-no-jobs]")?.remove();
    // A burst of new jobs opens the rows' stream again once, not once a job.
    if (!again) {
      again = true;
      window.setTimeout(() => {
        again = false;
        follow();
      }, 0);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.querySelector("[data-job-page]");
  if (page) jobPage(page);
  const table = document.querySelector("[data-jobs-list]");
  if (table) jobsList(table);
});
