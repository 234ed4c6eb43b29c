// The live parts of the pages: snapshots pushed by the server (Server-Sent
// Events), written into the page with textContent only, so a job's values
// are never read as HTML. No polling: the server pushes each change.
"use strict";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const number = new Intl.NumberFormat("en-US");
// Where the dashboard is mounted ("" at the top): every URL below starts
// with it, as the page's own links do.
const base = () => document.body.dataset.base ?? "";
const SVG = "http://www.w3.org/2000/svg";
// The most ids one /api/events stream takes (MAX_STREAMED_JOBS on the server).
const MAX_STREAMED_JOBS = 200;

// A job's own fields under root: not those of the jobs shown inside it
// (a chunked import's page holds a row per chunk, each with its own fields).
function fields(root, field) {
  return [...root.querySelectorAll(`[data-field="${field}"]`)].filter(
    (el) => el.closest("[data-job-id]") === root,
  );
}

function text(root, field, value) {
  for (const el of fields(root, field)) el.textContent = value;
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

// The largest unit only, as the server's _times.ago writes it.
const UNITS = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];

function ago(iso) {
  const moment = Date.parse(iso);
  if (Number.isNaN(moment)) return "–";
  // A time a little ahead of this clock (the server's) reads as now.
  const seconds = Math.max(0, Math.floor((Date.now() - moment) / 1000));
  for (const [size, unit] of UNITS) {
    if (seconds >= size) return `${Math.floor(seconds / size)} ${unit} ago`;
  }
  return "just now";
}

// As the server's _times.exact: to the second, in UTC.
function exact(iso) {
  return `${new Date(iso).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

// A <time> element: relative text, the exact time on hover, "–" for none.
function when(el, iso) {
  if (iso == null) {
    el.removeAttribute("datetime");
    el.removeAttribute("title");
    el.textContent = "–";
    return;
  }
  el.setAttribute("datetime", iso);
  el.setAttribute("title", exact(iso));
  el.textContent = ago(iso);
}

// Relative times move on by themselves: the clock here, not the server.
function keepTimesCurrent() {
  window.setInterval(() => {
    for (const el of document.querySelectorAll("time[datetime]")) el.textContent = ago(el.dateTime);
  }, 10000);
}

function progress(job) {
  const processed = number.format(job.processed_rows);
  return job.total_rows ? `${processed} / ${number.format(job.total_rows)}` : processed;
}

function show(root, job) {
  root.dataset.status = job.status;
  const [status] = fields(root, "status");
  if (status) status.className = `status status-${job.status}`;
  text(root, "status", job.status);
  const [bar] = fields(root, "bar");
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
  for (const field of ["created_at", "started_at", "completed_at", "heartbeat_at"]) {
    for (const el of fields(root, field)) when(el, job[field]);
  }
  text(root, "worker_id", job.worker_id ?? "–");
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

// The rate chart: rows per second over the last CHART_SECONDS, in buckets.
const CHART_SECONDS = 300;
const BUCKET_SECONDS = 5;
const BUCKETS = CHART_SECONDS / BUCKET_SECONDS;

// The rows processed at `moment` (ms), from the samples: straight between
// two snapshots, flat after the last one, so a stalled import falls to zero.
function rowsAt(samples, moment) {
  if (moment <= samples[0].at) return samples[0].rows;
  for (let i = 1; i < samples.length; i++) {
    const before = samples[i - 1];
    const after = samples[i];
    if (moment <= after.at) {
      return before.rows + (after.rows - before.rows) * (moment - before.at) / (after.at - before.at);
    }
  }
  return samples[samples.length - 1].rows;
}

// Rows per second in each bucket, oldest first, the last one ending now.
function bucketRates(samples, now) {
  const rates = [];
  for (let i = BUCKETS - 1; i >= 0; i--) {
    const end = now - i * BUCKET_SECONDS * 1000;
    const rows = samples.length ? rowsAt(samples, end) - rowsAt(samples, end - BUCKET_SECONDS * 1000) : 0;
    rates.push(Math.max(0, rows / BUCKET_SECONDS)); // a requeued job's count goes back: not a rate
  }
  return rates;
}

function polylinePoints(rates, width, height) {
  const peak = Math.max(...rates);
  const step = width / (rates.length - 1);
  // A pixel of margin top and bottom, so the line is never cut by the edge.
  const y = (rate) => (height - 1 - (peak ? (height - 2) * rate / peak : 0)).toFixed(1);
  return rates.map((rate, i) => `${(i * step).toFixed(1)},${y(rate)}`).join(" ");
}

function rateText(rate) {
  return `${number.format(Math.round(rate))} rows/s`;
}

// The job page's chart: samples (arrival time, processed rows) of each
// snapshot, drawn once a second on the browser's clock, which goes on
// when the snapshots stop. add() a snapshot; stop() keeps the last drawing.
function rateChart(page) {
  const svg = page.querySelector("[data-rate-chart]");
  if (!svg) return null;
  const { width, height } = svg.viewBox.baseVal;
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("data-rate-line", "");
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "1.5");
  line.setAttribute("stroke-linejoin", "round");
  svg.append(line);
  const samples = [];
  const draw = () => {
    const now = Date.now();
    // One sample older than the window stays: the first bucket reads from it.
    while (samples.length > 1 && samples[1].at < now - (CHART_SECONDS + BUCKET_SECONDS) * 1000) samples.shift();
    const rates = bucketRates(samples, now);
    line.setAttribute("points", polylinePoints(rates, width, height));
    for (const el of page.querySelectorAll("[data-rate-now]")) el.textContent = rateText(rates[rates.length - 1]);
    for (const el of page.querySelectorAll("[data-rate-peak]")) el.textContent = rateText(Math.max(...rates));
  };
  const clock = window.setInterval(draw, 1000);
  draw();
  return {
    add(job) {
      samples.push({ at: Date.now(), rows: job.processed_rows });
      draw();
    },
    stop() {
      window.clearInterval(clock);
      draw();
    },
  };
}

// Follow the jobs of rows (a Map of id to row) that have not ended over one
// /api/events stream, the first MAX_STREAMED_JOBS of them: a browser opens
// only a few connections to one server, so never a stream per hundred.
// onJob(row, job) takes each snapshot; done() is called once they all ended.
function followRows(rows, onJob, done) {
  const live = [...rows.values()].filter((row) => !TERMINAL.has(row.dataset.status)).slice(0, MAX_STREAMED_JOBS);
  if (!live.length) return null;
  let open = live.length;
  const query = live.map((row) => `id=${encodeURIComponent(row.dataset.jobId)}`).join("&");
  const stream = new EventSource(`${base()}/api/events?${query}`);
  const ended = () => {
    if (--open > 0) return;
    stream.close();
    if (done) done();
  };
  stream.addEventListener("job", (event) => {
    const job = JSON.parse(event.data);
    const row = rows.get(job.id);
    if (!row) return;
    onJob(row, job);
    if (TERMINAL.has(job.status)) ended();
  });
  stream.addEventListener("gone", (event) => {
    const row = rows.get(JSON.parse(event.data).id);
    if (row) {
      text(row, "status", "deleted");
      row.dataset.status = "cancelled"; // ended, for the next stream and the counts alike
    }
    ended();
  });
  return stream;
}

// "completed 3 · processing 2", sorted by status as the server draws it.
function showChunkStatuses(page, rows) {
  const line = page.querySelector("[data-chunk-statuses]");
  if (!line) return;
  const counts = new Map();
  for (const row of rows.values()) counts.set(row.dataset.status, (counts.get(row.dataset.status) ?? 0) + 1);
  const statuses = [...counts.keys()].sort();
  line.textContent = statuses.map((status) => `${status} ${number.format(counts.get(status))}`).join(" · ");
}

// A chunked import's chunk rows, live: the first MAX_STREAMED_JOBS chunks
// not ended, then, once those have, the next ones.
function followChunks(page) {
  const table = page.querySelector("[data-chunks]");
  if (!table) return;
  const rows = new Map([...table.querySelectorAll("tr[data-job-id]")].map((row) => [row.dataset.jobId, row]));
  const next = () => followRows(rows, (row, job) => {
    show(row, job);
    showChunkStatuses(page, rows);
  }, next);
  next();
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
  followChunks(page);
  if (TERMINAL.has(page.dataset.status)) return;
  const chart = rateChart(page);
  const events = new EventSource(`${base()}/api/jobs/${encodeURIComponent(id)}/events`);
  events.addEventListener("job", (event) => {
    const job = JSON.parse(event.data);
    show(page, job);
    if (chart) chart.add(job);
    // Snapshots carry the reasons when the server read them again.
    if (job.error_summary) showReasons(page, job.error_summary);
    if (TERMINAL.has(job.status)) {
      events.close();
      if (chart) chart.stop();
      if (cancel) cancel.remove();
    }
  });
  events.addEventListener("gone", () => {
    events.close();
    if (chart) chart.stop();
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
  for (const field of ["percent", "progress", "error_count", "skipped_count", "rate"]) {
    row.insertCell().dataset.field = field;
  }
  const created = document.createElement("time");
  created.dataset.field = "age";
  when(created, job.created_at);
  const age = row.insertCell();
  age.className = "muted";
  age.append(created);
  show(row, job);
  return row;
}

function jobsList(table) {
  const rows = new Map();
  for (const row of table.querySelectorAll("tr[data-job-id]")) rows.set(row.dataset.jobId, row);
  // One stream for the live rows, opened again over them all when rows are added.
  let events = null;
  const follow = () => {
    if (events) events.close();
    events = followRows(rows, show, follow);
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
  keepTimesCurrent();
  const table = document.querySelector("[data-jobs-list]");
  if (table) jobsList(table);
});
