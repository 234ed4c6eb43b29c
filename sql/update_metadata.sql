-- update_metadata: replace a job's metadata (the application's own fields),
-- whatever its status.
-- Returns the job, or no row when no job has this id.
UPDATE import_job
   SET metadata = %(metadata)s::jsonb,
       updated_at = now()
 WHERE id = %(id)s::uuid
RETURNING id, status, source_type, filename, total_rows, processed_rows, success_count,
          error_count, errors, started_at, completed_at, created_at, updated_at,
          heartbeat_at, worker_id, errors_dropped, errors_logged,
          checkpoint, source_sha256, source_size,
          owner, metadata, skipped_count, outcomes,
          parent_id, chunk, chunk_index, chunks, keep_going;
