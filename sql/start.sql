-- start: a worker takes one job: a pending job becomes processing (and
-- gets started_at); a processing job stays so and changes hands. Either way
-- the worker and its heartbeat are recorded.
-- Returns no row when no job has this id; otherwise one row with the status
-- the job had (previous_status) and the updated job, whose columns are all
-- NULL when the job had ended already.
WITH current_job AS (
    SELECT id, status
      FROM import_job
     WHERE id = %(id)s::uuid
       FOR UPDATE
), changed AS (
    UPDATE import_job AS job
       SET status = 'processing',
           started_at = CASE WHEN current_job.status = 'pending' THEN now()
                             ELSE job.started_at END,
           heartbeat_at = now(),
           worker_id = %(worker_id)s::text,
           updated_at = now()
      FROM current_job
     WHERE job.id = current_job.id
       AND current_job.status IN ('pending', 'processing')
 RETURNING job.id, job.status, job.source_type, job.filename, job.total_rows,
          job.processed_rows, job.success_count, job.error_count, job.errors,
          job.started_at, job.completed_at, job.created_at, job.updated_at,
          job.heartbeat_at, job.worker_id, job.errors_dropped, job.errors_logged,
          job.checkpoint, job.source_sha256, job.source_size,
          job.owner, job.metadata, job.skipped_count, job.outcomes,
          job.parent_id, job.chunk, job.chunk_index, job.chunks, job.keep_going
)
SELECT current_job.status AS previous_status, changed.*
  FROM current_job
  LEFT JOIN changed ON true;
