-- advance: add to a job's counters, in SQL (no read-modify-write), so any
-- number of workers can report into one job: a flush that carries no error
-- entries, most of them (advance_entries is the one that does, writing the
-- errors column, the error log and the reasons; this one leaves them be and
-- costs the server a quarter of it). When a worker is named and the job is
-- processing, it records the worker and its heartbeat.
-- A batch may carry a key and a number (a tracker's flush): the job applies
-- a key's batches in increasing number only, so a batch sent again after its
-- reply was lost changes nothing. The check runs on the locked, newest row.
-- A batch may carry a checkpoint (set_checkpoint; NULL clears it): stored in
-- this UPDATE, with the counts of the rows before it, so the two agree.
-- Skipped rows add to skipped_count; rows per outcome label add to the
-- job's outcomes (import_job_outcomes_add: past max_labels, "other").
-- Returns the job's status, processed_rows and error_count (after the
-- change, or as they are when the batch was applied already: a tracker's
-- error budget reads them), or no row when no job has this id.
WITH applied AS (
    UPDATE import_job
       SET processed_rows = processed_rows + %(processed)s::bigint,
           success_count = success_count + %(success)s::bigint,
           error_count = error_count + %(errors)s::bigint,
           skipped_count = skipped_count + %(skipped)s::bigint,
           outcomes = CASE WHEN %(outcomes)s::jsonb = '{}'::jsonb THEN outcomes
                           ELSE import_job_outcomes_add(outcomes, %(outcomes)s::jsonb,
                                                        %(max_labels)s::integer) END,
           heartbeat_at = CASE WHEN %(worker_id)s::text IS NOT NULL AND status = 'processing'
                               THEN now() ELSE heartbeat_at END,
           worker_id = CASE WHEN %(worker_id)s::text IS NOT NULL AND status = 'processing'
                            THEN %(worker_id)s::text ELSE worker_id END,
           applied_batches = CASE WHEN %(batch_key)s::text IS NULL THEN applied_batches
                                  ELSE jsonb_set(applied_batches, ARRAY[%(batch_key)s::text],
                                                 to_jsonb(%(batch_number)s::bigint)) END,
           -- A checkpoint, when the batch carries one, with the counts it covers.
           checkpoint = CASE WHEN %(set_checkpoint)s::boolean THEN %(checkpoint)s::jsonb
                             ELSE checkpoint END,
           updated_at = now()
     WHERE id = %(id)s::uuid
       AND (%(batch_key)s::text IS NULL
            OR coalesce((applied_batches ->> %(batch_key)s::text)::bigint, 0)
               < %(batch_number)s::bigint)
    RETURNING status, processed_rows, error_count)
SELECT status, processed_rows, error_count FROM applied
UNION ALL
-- Applied before: the row as it stands (read only when nothing was updated).
SELECT status, processed_rows, error_count FROM import_job
 WHERE id = %(id)s::uuid AND NOT EXISTS (SELECT FROM applied);
