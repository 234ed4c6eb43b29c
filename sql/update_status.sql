-- update_status: move one job to a new status if the lifecycle allows it.
-- The caller passes the statuses the target may be entered from
-- (from_statuses), whether entering it starts the job (starts: sets
-- started_at, and heartbeat_at so the job counts as alive) and whether it is terminal (terminal: sets completed_at), so
-- the lifecycle is written once, in importjob.models. Both times come from
-- the database's clock, in this statement.
-- The row is locked first (FOR UPDATE re-reads it after a concurrent change
-- commits), so of two concurrent transitions only one can succeed.
-- Returns no row when no job has this id; otherwise one row with the status
-- the job had (previous_status) and the updated job, whose columns are all
-- NULL when the transition was refused.
WITH current_job AS (
    SELECT id, status
      FROM import_job
     WHERE id = %(id)s::uuid
       FOR UPDATE
), changed AS (
    UPDATE import_job AS job
       SET status = %(status)s::text,
           started_at = CASE WHEN %(starts)s::boolean THEN now() ELSE job.started_at END,
           heartbeat_at = CASE WHEN %(starts)s::boolean THEN now() ELSE job.heartbeat_at END,
           completed_at = CASE WHEN %(terminal)s::boolean THEN now() END,
           updated_at = now()
      FROM current_job
     WHERE job.id = current_job.id
       AND current_job.status = ANY (%(from_statuses)s::text[])
 RETURNING job.id, job.status, job.source_type, job.filename, job.total_rows,
           job.processed_rows, job.success_count, job.error_count, job.errors,
           job.started_at, job.completed_at, job.created_at, job.updated_at,
           job.heartbeat_at, job.worker_id, job.errors_dropped
)
SELECT current_job.status AS previous_status, changed.*
  FROM current_job
  LEFT JOIN changed ON true;
