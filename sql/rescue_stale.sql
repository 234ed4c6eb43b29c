-- rescue_stale: end the processing jobs whose worker sent no heartbeat
-- since older_than ago: failed, or back to pending when requeue is true.
-- Each gets a WorkerLostError entry, recorded as add_error records one: in
-- the head of its errors column while it has room (migration 0018), else
-- counted in errors_dropped, written to its error log (within
-- error_log_limit) and counted in its group (within max_groups, else under
-- "other"); its counters stay as last flushed. A worker that heartbeats while this runs
-- keeps its job: the row is re-checked after its lock is released.
-- Returns the rescued jobs.
WITH stale AS (
    SELECT id,
           jsonb_build_object(
               'type', 'WorkerLostError',
               'message', format('worker %%s sent no heartbeat since %%s',
                                 coalesce(worker_id, '(unknown)'), heartbeat_at),
               'worker_id', worker_id,
               'heartbeat_at', heartbeat_at,
               'requeued', %(requeue)s::boolean) AS entry
      FROM import_job
     WHERE status = 'processing'
       AND heartbeat_at < now() - %(older_than)s::interval
       FOR NO KEY UPDATE
), reason AS (
    -- Each entry's reason, and whether its job has a group for it (looked
    -- up by key, never by counting the job's groups).
    SELECT keyed.*,
           coalesce((SELECT true FROM import_job_error_group AS g
                      WHERE g.job_id = keyed.id AND g.key = keyed.key), false) AS known
      FROM (SELECT id, entry, entry ->> 'message' AS message,
                   import_job_error_key('WorkerLostError', NULL, entry ->> 'message') AS key
              FROM stale
            OFFSET 0) AS keyed
), rescued AS (
    UPDATE import_job AS job
       SET status = CASE WHEN %(requeue)s::boolean THEN 'pending' ELSE 'failed' END,
           started_at = CASE WHEN %(requeue)s::boolean THEN NULL ELSE job.started_at END,
           completed_at = CASE WHEN %(requeue)s::boolean THEN NULL ELSE now() END,
           worker_id = CASE WHEN %(requeue)s::boolean THEN NULL ELSE job.worker_id END,
           -- The entry as add_error records one (see there): the head's while
           -- the column takes it, else logged and its reason counted.
           (errors, errors_dropped, errors_head, errors_logged, errors_recorded,
            error_groups) = (
               SELECT CASE WHEN fit = 1 THEN job.errors || jsonb_build_array(reason.entry)
                           ELSE job.errors END,
                      job.errors_dropped + 1 - fit,
                      job.errors_head + fit,
                      job.errors_logged + greatest(
                          CASE WHEN job.errors_head IS NULL THEN 0 ELSE fit END,
                          least(job.errors_recorded + 1,
                                coalesce(%(error_log_limit)s::bigint, 9223372036854775807))
                            - job.errors_recorded),
                      job.errors_recorded + 1,
                      -- A place for a reason new to the job past the head, whether
                      -- or not one is left.
                      job.error_groups + CASE
                          WHEN job.errors_head IS NOT NULL AND fit = 1 OR reason.known THEN 0
                          ELSE 1
                      END
                 FROM (SELECT import_job_error_fit(job.errors, job.errors_head,
                                                   job.errors_recorded, %(max_errors)s::bigint,
                                                   jsonb_build_array(reason.entry)) AS fit) AS one),
           updated_at = now()
      FROM reason
     WHERE job.id = reason.id
    RETURNING job.id, job.status, job.source_type, job.filename, job.total_rows,
              job.processed_rows, job.success_count, job.error_count, job.errors,
              job.started_at, job.completed_at, job.created_at, job.updated_at,
              job.heartbeat_at, job.worker_id, job.errors_dropped, job.errors_logged,
              job.checkpoint, job.source_sha256, job.source_size,
              job.errors_recorded, job.error_groups, reason.entry, reason.message, reason.key,
              reason.known, job.errors_recorded > coalesce(job.errors_head, 0) AS logs
), logged AS (
    INSERT INTO import_job_error (job_id, n, entry)
    SELECT id, errors_recorded, entry
      FROM rescued
     WHERE logs
       AND errors_recorded <= coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
), counted AS (
    -- A new reason takes the job's next place, past max_groups "other".
    INSERT INTO import_job_error_group AS g (job_id, key, type, field, message, count)
    SELECT id, CASE WHEN fits THEN key ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
           CASE WHEN fits THEN 'WorkerLostError' END, NULL, CASE WHEN fits THEN message END, 1
      FROM (SELECT rescued.*, known OR error_groups <= %(max_groups)s::bigint AS fits
              FROM rescued
             WHERE logs) AS placed
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + excluded.count
)
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size
  FROM rescued;
