-- add_error: record one error entry for a job, the counters left as they
-- are (error_count is the caller's, through advance). The entry takes the
-- job's next number (errors_recorded), a row of its error log while that
-- number is within error_log_limit, a place in the errors array while that
-- has room (import_job_errors_room), and a count under its reason: a
-- reason new to the job takes its next place, past max_groups "other".
-- Returns one row when the job exists, none when no job has this id.
WITH reason AS (
    SELECT %(entries)s::jsonb -> 0 AS entry, given.*,
           import_job_error_key(given.type, given.field, given.message) AS key
      FROM (SELECT %(entries)s::jsonb -> 0 ->> 'type' AS type,
                   %(entries)s::jsonb -> 0 ->> 'field' AS field,
                   %(entries)s::jsonb -> 0 ->> 'message' AS message) AS given
), applied AS (
    UPDATE import_job AS job
       SET (errors, errors_recorded, errors_logged, errors_dropped, error_groups) = (
               SELECT CASE WHEN fits THEN job.errors || %(entries)s::jsonb ELSE job.errors END,
                      job.errors_recorded + 1,
                      job.errors_logged + CASE
                          WHEN job.errors_recorded
                               < coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
                          THEN 1 ELSE 0 END,
                      job.errors_dropped + CASE WHEN fits THEN 0 ELSE 1 END,
                      job.error_groups + CASE WHEN known THEN 0 ELSE 1 END
                 FROM (SELECT import_job_errors_room(job.errors, job.errors_dropped,
                                                     %(max_errors)s::bigint) > 0 AS fits,
                              EXISTS (SELECT FROM import_job_error_group AS g, reason
                                       WHERE g.job_id = job.id AND g.key = reason.key) AS known
                      ) AS entry),
           updated_at = now()
     WHERE job.id = %(id)s::uuid
    RETURNING job.id, job.errors_recorded AS n, job.error_groups
), logged AS (
    INSERT INTO import_job_error (job_id, n, entry)
    SELECT applied.id, applied.n, reason.entry
      FROM applied, reason
     WHERE applied.n <= coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
), counted AS (
    -- Its own group while the job has places left, or has one for it;
    -- else "other", the all-zero key.
    INSERT INTO import_job_error_group AS g (job_id, key, type, field, message, count)
    SELECT applied.id, CASE WHEN fits THEN key ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
           CASE WHEN fits THEN type END, CASE WHEN fits THEN field END,
           CASE WHEN fits THEN message END, 1
      FROM applied, reason,
           LATERAL (SELECT applied.error_groups <= %(max_groups)s::bigint
                           OR EXISTS (SELECT FROM import_job_error_group AS known
                                       WHERE known.job_id = applied.id
                                         AND known.key = reason.key) AS fits) AS placed
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + 1
)
SELECT FROM applied;
