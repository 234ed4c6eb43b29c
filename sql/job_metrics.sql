-- job_metrics: what ImportJobRepository.job_metrics (and so the web
-- server's /metrics) reports, per status: how many jobs, the sums of their
-- processed, failed and skipped rows, the age in seconds of the oldest (by
-- created_at), and how many live jobs have shown no life (heartbeat, else
-- start) for stale_after. A chunked import's rows are counted on its
-- chunks, not again on the parent that sums them.
-- The ended jobs are counted as they end (import_job_ended_change, see
-- schema.sql): this folds the changes since the last call into
-- import_job_ended_count and returns those rows, so no ended job is read.
-- The live ones (pending, processing) are summed through
-- ix_import_job_status. Two calls at once take turns on the count rows:
-- the second folds onto the first's, so both return the exact counts.
-- Returns one row per ended status, and one per live status that has jobs;
-- the sums as numeric, exact past bigint.
WITH changes AS (
    DELETE FROM import_job_ended_change
    RETURNING status, jobs, processed_rows, failed_rows, skipped_rows
), ended AS (
    INSERT INTO import_job_ended_count AS counted
           (status, jobs, processed_rows, failed_rows, skipped_rows)
    SELECT ended.status, coalesce(sum(change.jobs), 0),
           coalesce(sum(change.processed_rows), 0), coalesce(sum(change.failed_rows), 0),
           coalesce(sum(change.skipped_rows), 0)
      FROM (VALUES ('cancelled'), ('completed'), ('failed')) AS ended (status)
      LEFT JOIN changes AS change ON change.status = ended.status
     GROUP BY ended.status
     ORDER BY ended.status
    ON CONFLICT (status) DO UPDATE
       SET jobs = counted.jobs + excluded.jobs,
           processed_rows = counted.processed_rows + excluded.processed_rows,
           failed_rows = counted.failed_rows + excluded.failed_rows,
           skipped_rows = counted.skipped_rows + excluded.skipped_rows
    RETURNING counted.status, counted.jobs, counted.processed_rows, counted.failed_rows,
              counted.skipped_rows
)
SELECT ended.status, ended.jobs, ended.processed_rows, ended.failed_rows, ended.skipped_rows,
       (SELECT extract(epoch FROM now() - min(job.created_at))::float8
          FROM import_job AS job WHERE job.status = ended.status) AS oldest_age_seconds,
       0::bigint AS without_heartbeat  -- an ended job has no life to show
  FROM ended
UNION ALL
SELECT status,
       count(*),
       coalesce(sum(processed_rows) FILTER (WHERE chunks IS NULL), 0),
       coalesce(sum(error_count) FILTER (WHERE chunks IS NULL), 0),
       coalesce(sum(skipped_count) FILTER (WHERE chunks IS NULL), 0),
       extract(epoch FROM now() - min(created_at))::float8,
       count(*) FILTER (
           WHERE coalesce(heartbeat_at, started_at) < now() - %(stale_after)s::interval
       )
  FROM import_job
 WHERE status IN ('pending', 'processing')
 GROUP BY status;
