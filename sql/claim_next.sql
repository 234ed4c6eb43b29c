-- claim_next: take the pending job whose turn it is (the lowest claim_round,
-- oldest first: claims go round the owners, as schema.sql says) and make it
-- processing, for one worker, in one statement. SKIP LOCKED lets concurrent
-- workers pass over a job another is claiming, so no two workers ever get
-- the same job.
-- Returns the claimed job, or no row when no job is pending.
WITH next_job AS (
    SELECT id
      FROM import_job
     WHERE status = 'pending'
       AND chunks IS NULL  -- a parent is done by its chunks, never claimed
     ORDER BY claim_round, created_at, id
     LIMIT 1
       FOR UPDATE SKIP LOCKED
)
UPDATE import_job AS job
   SET status = 'processing',
       started_at = now(),
       heartbeat_at = now(),
       worker_id = %(worker_id)s::text,
       updated_at = now()
  FROM next_job
 WHERE job.id = next_job.id
RETURNING job.id, job.status, job.source_type, job.filename, job.total_rows,
          job.processed_rows, job.success_count, job.error_count, job.errors,
          job.started_at, job.completed_at, job.created_at, job.updated_at,
          job.heartbeat_at, job.worker_id, job.errors_dropped, job.errors_logged,
          job.checkpoint, job.source_sha256, job.source_size,
          job.owner, job.metadata, job.skipped_count, job.outcomes,
          job.parent_id, job.chunk, job.chunk_index, job.chunks, job.keep_going;
