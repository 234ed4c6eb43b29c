-- watch: register one watcher of a job, or refresh its registration, so
-- that the job's changes notify (migration 0007) until expires_at; delete
-- the registrations of other watchers that expired (watchers that died);
-- and read the job.
-- Returns the job, or no row when no job has this id.
WITH expired AS (
    DELETE FROM import_job_watch
     WHERE expires_at < now()
       AND watcher <> %(watcher)s::uuid
), registered AS (
    INSERT INTO import_job_watch (job_id, watcher, expires_at)
    VALUES (%(id)s::uuid, %(watcher)s::uuid, now() + %(ttl)s::interval)
        ON CONFLICT (job_id, watcher) DO UPDATE SET expires_at = excluded.expires_at
)
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped
  FROM import_job
 WHERE id = %(id)s::uuid;
