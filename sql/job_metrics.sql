-- job_metrics: what ImportJobRepository.job_metrics (and so the web
-- server's /metrics) reports, per status: how many jobs, the sums of their
-- processed, failed and skipped rows, the age in seconds of the oldest (by
-- created_at), and how many have shown no life (heartbeat, else start) for
-- stale_after. A scan of the table: a scrape every few seconds is cheap
-- next to the writes, and no index serves sums. A chunked import's rows
-- are counted on its chunks, not again on the parent that sums them.
-- Returns one row per status that has jobs; the sums as numeric, exact
-- past bigint.
SELECT status,
       count(*) AS jobs,
       coalesce(sum(processed_rows) FILTER (WHERE chunks IS NULL), 0) AS processed_rows,
       coalesce(sum(error_count) FILTER (WHERE chunks IS NULL), 0) AS failed_rows,
       coalesce(sum(skipped_count) FILTER (WHERE chunks IS NULL), 0) AS skipped_rows,
       extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_seconds,
       count(*) FILTER (
           WHERE coalesce(heartbeat_at, started_at) < now() - %(stale_after)s::interval
       ) AS without_heartbeat
  FROM import_job
 GROUP BY status;
