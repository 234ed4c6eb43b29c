-- release: hand a processing job back to pending, for another worker to
-- claim and resume: its worker is stopping (`importjob worker` on SIGTERM).
-- Only the worker recorded on the job releases it, so a worker that lost
-- its job to rescue_stale cannot take it from the one that claimed it
-- since. Counts, checkpoint and entries stay as last flushed.
-- Returns the job, pending, or no row when no processing job of this
-- worker has this id.
UPDATE import_job
   SET status = 'pending',
       started_at = NULL,
       worker_id = NULL,
       updated_at = now()
 WHERE id = %(id)s::uuid
   AND status = 'processing'
   AND worker_id = %(worker_id)s::text
RETURNING id, status, source_type, filename, total_rows, processed_rows, success_count,
          error_count, errors, started_at, completed_at, created_at, updated_at,
          heartbeat_at, worker_id, errors_dropped, errors_logged,
          checkpoint, source_sha256, source_size,
          owner, metadata, skipped_count, outcomes,
          parent_id, chunk, chunk_index, chunks, keep_going;
