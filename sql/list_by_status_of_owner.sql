-- list_by_status_of_owner: the oldest jobs of one owner in one status,
-- oldest first.
-- Served by ix_import_job_owner_status (owner, status, created_at, id);
-- id breaks ties.
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes,
       parent_id, chunk, chunk_index, chunks, keep_going
  FROM import_job_summed
 WHERE owner = %(owner)s::text
   AND status = %(status)s::text
   AND parent_id IS NULL  -- one row an import: its chunks are read by children
 ORDER BY created_at, id
 LIMIT %(limit)s::bigint;
