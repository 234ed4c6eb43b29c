-- list_by_status: the oldest jobs in one status, oldest first.
-- Served by ix_import_job_status (status, created_at, id); id breaks ties.
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes
  FROM import_job
 WHERE status = %(status)s::text
 ORDER BY created_at, id
 LIMIT %(limit)s::bigint;
