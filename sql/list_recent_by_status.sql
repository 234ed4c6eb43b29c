-- list_recent_by_status: the newest jobs in one status, newest first.
-- Served backwards by ix_import_job_status (status, created_at, id). The
-- errors array only with with_errors: otherwise an empty one, and the
-- stored value (up to max_errors entries, usually TOASTed) is not read.
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count,
       CASE WHEN %(with_errors)s::boolean THEN errors ELSE '[]'::jsonb END AS errors,
       started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size
  FROM import_job
 WHERE status = %(status)s::text
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s::bigint;
