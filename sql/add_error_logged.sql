-- add_error_logged: record one error entry past a job's head, the counters
-- left as they are: what advance_entries records for a batch of one, in a
-- statement of its own (no grouping, ranking or numbering of a batch).
-- add_error runs it when the head's UPDATE (add_error.sql) was refused, or
-- for a job the repository found past its head before. It is right in any
-- case, though: while the column has room for the head
-- (import_job_error_fit) the entry goes there only; else it takes the next
-- number, is logged (up to error_log_limit) and its reason counted (a
-- reason new to the job takes its next place, past max_groups "other"); a
-- job from before 0018 (errors_head NULL) also keeps it in the column while
-- there is room.
-- entries is the batch of one, as advance_entries takes it.
-- Returns one row when the job exists (the caller reads the row count),
-- none when no job has this id.
WITH applied AS (
    UPDATE import_job AS job
       SET (errors, errors_dropped, errors_head, errors_logged, errors_recorded,
            error_groups) = (
               SELECT CASE WHEN fit = 1 THEN job.errors || %(entries)s::jsonb ELSE job.errors END,
                      job.errors_dropped + 1 - fit,
                      job.errors_head + fit,
                      -- The head's entry, or the log's if under its limit.
                      job.errors_logged + greatest(
                          CASE WHEN job.errors_head IS NULL THEN 0 ELSE fit END,
                          least(job.errors_recorded + 1,
                                coalesce(%(error_log_limit)s::bigint, 9223372036854775807))
                            - job.errors_recorded),
                      job.errors_recorded + 1,
                      -- A place for a reason new to the job past the head, whether
                      -- or not one is left (looked up by key: an EXISTS may become a
                      -- hash of every group).
                      job.error_groups + CASE
                          WHEN job.errors_head IS NOT NULL AND fit = 1 THEN 0
                          WHEN (SELECT true FROM import_job_error_group AS g
                                 WHERE g.job_id = job.id
                                   AND g.key = import_job_error_key(
                                       %(entries)s::jsonb -> 0 ->> 'type',
                                       %(entries)s::jsonb -> 0 ->> 'field',
                                       %(entries)s::jsonb -> 0 ->> 'message')) THEN 0
                          ELSE 1
                      END
                 -- Whether the column takes it (reading the row's old values).
                 FROM (SELECT import_job_error_fit(job.errors, job.errors_head,
                                                   job.errors_recorded, %(max_errors)s::bigint,
                                                   %(entries)s::jsonb) AS fit) AS entry),
           updated_at = now()
     WHERE job.id = %(id)s::uuid
    RETURNING job.id, job.errors_recorded, job.error_groups,
              job.errors_recorded > coalesce(job.errors_head, 0) AS logs
), logged AS (
    INSERT INTO import_job_error (job_id, n, entry)
    SELECT id, errors_recorded, %(entries)s::jsonb -> 0
      FROM applied
     WHERE logs
       AND errors_recorded <= coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
), counted AS (
    -- Its own place while the job has places left (known or new, the same
    -- key); past them, its group if it has one, else "other".
    INSERT INTO import_job_error_group AS g (job_id, key, type, field, message, count)
    SELECT id, CASE WHEN fits THEN key ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
           CASE WHEN fits THEN type END, CASE WHEN fits THEN field END,
           CASE WHEN fits THEN message END, 1
      FROM (SELECT reason.*,
                   error_groups <= %(max_groups)s::bigint
                   OR coalesce((SELECT true FROM import_job_error_group AS known
                                 WHERE known.job_id = reason.id AND known.key = reason.key),
                               false) AS fits
              FROM (SELECT applied.id, applied.error_groups, given.*,
                           import_job_error_key(given.type, given.field, given.message) AS key
                      FROM applied,
                           LATERAL (SELECT %(entries)s::jsonb -> 0 ->> 'type' AS type,
                                           %(entries)s::jsonb -> 0 ->> 'field' AS field,
                                           %(entries)s::jsonb -> 0 ->> 'message' AS message) AS given
                     WHERE applied.logs
                    OFFSET 0) AS reason) AS placed
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + 1
)
SELECT FROM applied;
