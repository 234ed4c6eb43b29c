-- get_by_id: read one job by id.
-- Returns the job, or no row when no job has this id.
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes,
       parent_id, chunk, chunk_index, chunks, keep_going
  FROM import_job_summed
 WHERE id = %(id)s::uuid;
