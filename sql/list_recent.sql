-- list_recent: the newest jobs, whatever their status, newest first.
-- Served backwards by ix_import_job_created_at (created_at, id).
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped
  FROM import_job
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s::bigint;
