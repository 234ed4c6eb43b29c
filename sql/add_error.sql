-- add_error: append one error entry to a job's head (migration 0018), the
-- counters left as they are: while every entry before it went there and
-- the column has room under max_errors (import_job_error_fit), the entry
-- takes the next number and is kept only in the errors column. One UPDATE,
-- the same as appending to the column by hand, no log row, no reason
-- counted (error_summary counts the head's). A job from before 0018
-- (errors_head NULL) has no head.
-- Returns one row when the entry went to the head; none when it did not,
-- or when no job has this id: the repository then records it with
-- add_error_logged (a second round trip, past the head only).
UPDATE import_job
   SET errors = errors || %(entries)s::jsonb,
       errors_head = errors_head + 1,
       errors_logged = errors_logged + 1,
       errors_recorded = errors_recorded + 1,
       updated_at = now()
 WHERE id = %(id)s::uuid
   AND errors_head IS NOT NULL
   AND import_job_error_fit(errors, errors_head, errors_recorded, %(max_errors)s::bigint,
                            %(entries)s::jsonb) = 1;
