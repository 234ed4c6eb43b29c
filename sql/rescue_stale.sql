-- rescue_stale: end the processing jobs whose worker sent no heartbeat
-- since older_than ago: failed, or back to pending when requeue is true.
-- Each gets a WorkerLostError entry (within max_errors, else counted in
-- errors_dropped); its counters stay as last flushed. A worker that
-- heartbeats while this runs keeps its job: the row is re-checked after
-- its lock is released.
-- Returns the rescued jobs.
UPDATE import_job AS job
   SET status = CASE WHEN %(requeue)s::boolean THEN 'pending' ELSE 'failed' END,
       started_at = CASE WHEN %(requeue)s::boolean THEN NULL ELSE job.started_at END,
       completed_at = CASE WHEN %(requeue)s::boolean THEN NULL ELSE now() END,
       worker_id = CASE WHEN %(requeue)s::boolean THEN NULL ELSE job.worker_id END,
       errors = CASE
           WHEN jsonb_array_length(job.errors) >= %(max_errors)s::bigint THEN job.errors
           ELSE job.errors || jsonb_build_array(jsonb_build_object(
               'type', 'WorkerLostError',
               'message', format('worker %%s sent no heartbeat since %%s',
                                 coalesce(job.worker_id, '(unknown)'), job.heartbeat_at),
               'worker_id', job.worker_id,
               'heartbeat_at', job.heartbeat_at,
               'requeued', %(requeue)s::boolean))
       END,
       errors_dropped = job.errors_dropped
           + CASE WHEN jsonb_array_length(job.errors) >= %(max_errors)s::bigint THEN 1 ELSE 0 END,
       updated_at = now()
 WHERE job.status = 'processing'
   AND job.heartbeat_at < now() - %(older_than)s::interval
RETURNING job.id, job.status, job.source_type, job.filename, job.total_rows,
          job.processed_rows, job.success_count, job.error_count, job.errors,
          job.started_at, job.completed_at, job.created_at, job.updated_at,
          job.heartbeat_at, job.worker_id, job.errors_dropped;
