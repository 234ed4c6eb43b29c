-- job_metrics: what the web server's /metrics reports, per status: how many
-- jobs, their processed and failed rows, the age in seconds of the oldest
-- (by created_at), and how many have shown no life (heartbeat, else start)
-- for stale_after. A scan of the table: a scrape every few seconds is cheap
-- next to the writes, and no index serves sums.
-- Returns one row per status that has jobs.
SELECT status,
       count(*)::float8 AS jobs,
       coalesce(sum(processed_rows), 0)::float8 AS processed_rows,
       coalesce(sum(error_count), 0)::float8 AS failed_rows,
       extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_seconds,
       (count(*) FILTER (
            WHERE coalesce(heartbeat_at, started_at) < now() - %(stale_after)s::interval
       ))::float8 AS without_heartbeat
  FROM import_job
 GROUP BY status;
