-- add_error: append one error entry to a job, the counters left as they
-- are: add_errors (see there) for a batch of one, which is most calls, in
-- a statement of its own. One entry needs no grouping, ranking or
-- numbering of a batch: its reason is keyed and looked up once, it takes
-- the next number of the log, and a reason new to the job its next place
-- (past max_groups, "other"), as rescue_stale does for its entry. About
-- half the executor's set-up of add_errors, for the same rows written.
-- entries is the batch of one, as add_errors takes it.
-- Returns one row when the job exists (the caller reads the row count),
-- none when no job has this id.
WITH reason AS (
    SELECT keyed.*,
           coalesce((SELECT true FROM import_job_error_group AS g
                      WHERE g.job_id = %(id)s::uuid AND g.key = keyed.key), false) AS known
      FROM (SELECT entry ->> 'type' AS type, entry ->> 'field' AS field,
                   entry ->> 'message' AS message,
                   import_job_error_key(entry ->> 'type', entry ->> 'field',
                                        entry ->> 'message') AS key
              FROM (SELECT %(entries)s::jsonb -> 0 AS entry) AS given
            OFFSET 0) AS keyed
), applied AS (
    UPDATE import_job AS job
       SET errors = CASE WHEN jsonb_array_length(job.errors) >= %(max_errors)s::bigint
                         THEN job.errors ELSE job.errors || %(entries)s::jsonb END,
           errors_dropped = job.errors_dropped
               + CASE WHEN jsonb_array_length(job.errors) >= %(max_errors)s::bigint
                      THEN 1 ELSE 0 END,
           errors_logged = job.errors_logged
               + CASE WHEN job.errors_recorded
                           < coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
                      THEN 1 ELSE 0 END,
           errors_recorded = job.errors_recorded + 1,
           error_groups = job.error_groups + CASE WHEN reason.known THEN 0 ELSE 1 END,
           updated_at = now()
      FROM reason
     WHERE job.id = %(id)s::uuid
    RETURNING job.id, job.errors_recorded, job.error_groups, reason.key, reason.type,
              reason.field, reason.message, reason.known
), logged AS (
    INSERT INTO import_job_error (job_id, n, entry)
    SELECT id, errors_recorded, %(entries)s::jsonb -> 0
      FROM applied
     WHERE errors_recorded <= coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
), counted AS (
    INSERT INTO import_job_error_group AS g (job_id, key, type, field, message, count)
    SELECT id, CASE WHEN fits THEN key ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
           CASE WHEN fits THEN type END, CASE WHEN fits THEN field END,
           CASE WHEN fits THEN message END, 1
      FROM (SELECT applied.*, known OR error_groups <= %(max_groups)s::bigint AS fits
              FROM applied
            OFFSET 0) AS placed
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + 1
)
SELECT FROM applied;
