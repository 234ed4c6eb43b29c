-- update_status: move one job to a new status if the lifecycle allows it.
-- The caller passes the statuses the target may be entered from
-- (from_statuses), whether entering it starts the job (starts: sets
-- started_at, and heartbeat_at so the job counts as alive) and whether it
-- is terminal (terminal: sets completed_at), so the lifecycle is written
-- once, in importjob.models. Both times come from the database's clock.
-- One guarded UPDATE: its WHERE is re-checked on the newest row version
-- after a concurrent change commits, so of two concurrent transitions only
-- one can succeed. A plain UPDATE ... RETURNING: the refusing status, rare,
-- is read by status_of.sql only when a transition was refused.
-- Returns the updated job, or no row when no job has this id, the
-- lifecycle refused the transition or the job is a chunked import.
UPDATE import_job
   SET status = %(status)s::text,
       started_at = CASE WHEN %(starts)s::boolean THEN now() ELSE started_at END,
       heartbeat_at = CASE WHEN %(starts)s::boolean THEN now() ELSE heartbeat_at END,
       completed_at = CASE WHEN %(terminal)s::boolean THEN now() END,
       updated_at = now()
 WHERE id = %(id)s::uuid
   AND status = ANY (%(from_statuses)s::text[])
   -- A chunked import's status follows its chunks (import_job_chunk_moved).
   AND chunks IS NULL
RETURNING id, status, source_type, filename, total_rows, processed_rows, success_count,
          error_count, errors, started_at, completed_at, created_at, updated_at,
          heartbeat_at, worker_id, errors_dropped, errors_logged,
          checkpoint, source_sha256, source_size,
          owner, metadata, skipped_count, outcomes,
          parent_id, chunk, chunk_index, chunks, keep_going;
