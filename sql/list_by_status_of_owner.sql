-- list_by_status_of_owner: the oldest jobs of one owner in one status,
-- oldest first.
-- Served by ix_import_job_owner_status (owner, status, created_at, id);
-- id breaks ties.
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes
  FROM import_job
 WHERE owner = %(owner)s::text
   AND status = %(status)s::text
 ORDER BY created_at, id
 LIMIT %(limit)s::bigint;
