-- rescue_stale: end the processing jobs whose worker sent no heartbeat
-- since older_than ago: failed, or back to pending when requeue is true.
-- Each gets a WorkerLostError entry, recorded as add_error records one: the
-- job's next number, a row of its error log (within error_log_limit), a
-- place in its errors array while that has room, and a count in its group
-- (within max_groups, else under "other"); its counters stay as last
-- flushed. A worker that heartbeats while this runs keeps its job: the row
-- is re-checked after its lock is released. The jobs are locked in id
-- order, as every writer of several chunks takes them.
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
     ORDER BY id
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
           (errors, errors_recorded, errors_logged, errors_dropped, error_groups) = (
               SELECT CASE WHEN fits THEN job.errors || jsonb_build_array(reason.entry)
                           ELSE job.errors END,
                      job.errors_recorded + 1,
                      job.errors_logged + CASE
                          WHEN job.errors_recorded
                               < coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
                          THEN 1 ELSE 0 END,
                      job.errors_dropped + CASE WHEN fits THEN 0 ELSE 1 END,
                      job.error_groups + CASE WHEN reason.known THEN 0 ELSE 1 END
                 FROM (SELECT import_job_errors_room(job.errors, job.errors_dropped,
                                                     %(max_errors)s::bigint) > 0 AS fits) AS one),
           updated_at = now()
      FROM reason
     WHERE job.id = reason.id
    RETURNING job.id, job.status, job.source_type, job.filename, job.total_rows,
              job.processed_rows, job.success_count, job.error_count, job.errors,
              job.started_at, job.completed_at, job.created_at, job.updated_at,
              job.heartbeat_at, job.worker_id, job.errors_dropped, job.errors_logged,
              job.checkpoint, job.source_sha256, job.source_size,
              job.owner, job.metadata, job.skipped_count, job.outcomes,
              job.parent_id, job.chunk, job.chunk_index, job.chunks, job.keep_going,
              job.errors_recorded, job.error_groups, reason.entry, reason.message, reason.key,
              reason.known
), logged AS (
    INSERT INTO import_job_error (job_id, n, entry)
    SELECT id, errors_recorded, entry
      FROM rescued
     WHERE errors_recorded <= coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
), counted AS (
    -- A new reason takes the job's next place, past max_groups "other".
    INSERT INTO import_job_error_group AS g (job_id, key, type, field, message, count)
    SELECT id, CASE WHEN fits THEN key ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
           CASE WHEN fits THEN 'WorkerLostError' END, NULL, CASE WHEN fits THEN message END, 1
      FROM (SELECT rescued.*, known OR error_groups <= %(max_groups)s::bigint AS fits
              FROM rescued) AS placed
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + excluded.count
)
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes,
       parent_id, chunk, chunk_index, chunks, keep_going
  FROM rescued;
