-- advance_entries: advance (see advance.sql) for a batch that carries error
-- entries: add to a job's counters and record the entries, in SQL, so any
-- number of workers can report into one job. Entries are kept in the errors
-- column up to max_errors, oldest first; the ones past that bound are only
-- counted there, in errors_dropped, with the entries_dropped the caller left
-- out already. Every entry is also written to the job's error log
-- (import_job_error, n numbering them with errors_recorded) up to
-- error_log_limit (NULL: no limit), and counted in its group of (type, field,
-- message) (import_job_error_group; past max_groups groups per job, under the
-- all-zero "other" key). The entries_dropped a caller left out (a tracker's
-- buffer past the log's limit) come after the batch's entries: they take
-- their numbers and count under "other", their reasons unknown. When a worker
-- is named and the job is processing, it records the worker and its
-- heartbeat.
-- A batch may carry a key and a number (a tracker's flush): the job applies a
-- key's batches in increasing number only, so a batch sent again after its
-- reply was lost changes nothing, in the log and the groups either. The check
-- runs on the locked, newest row; the log and the groups are written from
-- what the update returns, so they follow it exactly.
-- A batch may carry a checkpoint (set_checkpoint; NULL clears it), stored
-- in the same UPDATE as the counts it covers.
-- Nothing here grows with the log or the groups: the batch's reasons are
-- looked up by key (import_job_error_reasons, inlined), and the job's
-- error_groups counts the places handed out, under the row's lock.
-- Returns the job's status, processed_rows and error_count (after the
-- change, or as they are when the batch was applied already: a tracker's
-- error budget reads them), or no row when no job has this id.
WITH reason AS (
    SELECT * FROM import_job_error_reasons(%(id)s::uuid, %(entries)s::jsonb)
), applied AS (
    UPDATE import_job
       SET processed_rows = processed_rows + %(processed)s::bigint,
           success_count = success_count + %(success)s::bigint,
           error_count = error_count + %(errors)s::bigint,
           errors = CASE
               -- Nothing to append, or no room: the stored value stays as it is, unrewritten.
               WHEN jsonb_array_length(%(entries)s::jsonb) = 0
                 OR jsonb_array_length(errors) >= %(max_errors)s::bigint THEN errors
               -- All of them fit (the common case): appended as they came.
               WHEN jsonb_array_length(errors) + jsonb_array_length(%(entries)s::jsonb)
                    <= %(max_errors)s::bigint THEN errors || %(entries)s::jsonb
               -- Some fit: the first ones, in order.
               ELSE errors || (
                   SELECT coalesce(jsonb_agg(entry.value ORDER BY entry.n), '[]'::jsonb)
                     FROM jsonb_array_elements(%(entries)s::jsonb)
                          WITH ORDINALITY AS entry (value, n)
                    WHERE entry.n <= %(max_errors)s::bigint - jsonb_array_length(errors))
           END,
           errors_dropped = errors_dropped + %(entries_dropped)s::bigint + CASE
               -- Without entries the stored array is not read (it may be large).
               WHEN jsonb_array_length(%(entries)s::jsonb) = 0 THEN 0
               ELSE greatest(0, jsonb_array_length(%(entries)s::jsonb)
                                  - greatest(0, %(max_errors)s::bigint
                                                - jsonb_array_length(errors)))
           END,
           -- The log takes the entries numbered up to the limit (SET reads the old values).
           errors_logged = errors_logged + greatest(0, least(
               errors_recorded + jsonb_array_length(%(entries)s::jsonb),
               coalesce(%(error_log_limit)s::bigint, 9223372036854775807)) - errors_recorded),
           errors_recorded = errors_recorded + jsonb_array_length(%(entries)s::jsonb)
                             + %(entries_dropped)s::bigint,
           -- A place for each reason new to the job, whether or not one is left.
           error_groups = error_groups + (SELECT count(place) FROM reason),
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
    RETURNING id, status, processed_rows, error_count, errors_recorded, error_groups
), logged AS (
    -- RETURNING gives the new errors_recorded: the batch's first entry is
    -- that minus the batch's size (entries and dropped ones), plus 1.
    INSERT INTO import_job_error (job_id, n, entry)
    SELECT applied.id, numbered.n, numbered.value
      FROM applied,
           LATERAL (SELECT applied.errors_recorded - jsonb_array_length(%(entries)s::jsonb)
                             - %(entries_dropped)s::bigint + item.n AS n,
                           item.value
                      FROM jsonb_array_elements(%(entries)s::jsonb)
                           WITH ORDINALITY AS item (value, n)) AS numbered
     WHERE numbered.n <= coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
), counted AS (
    -- A new reason takes the next place, in the order the batch first shows
    -- it (the places before the batch's are the returned error_groups less
    -- its new ones); past max_groups it counts under "other".
    INSERT INTO import_job_error_group AS g (job_id, key, type, field, message, count)
    SELECT applied.id, placed.key, placed.type, placed.field, placed.message,
           sum(placed.count)::bigint
      FROM applied,
           LATERAL (SELECT CASE WHEN fits THEN key
                                ELSE '00000000-0000-0000-0000-000000000000'::uuid END AS key,
                           CASE WHEN fits THEN type END AS type,
                           CASE WHEN fits THEN field END AS field,
                           CASE WHEN fits THEN message END AS message,
                           count
                      FROM (SELECT reason.*,
                                   known OR applied.error_groups - (SELECT count(place) FROM reason)
                                            + place <= %(max_groups)s::bigint AS fits
                              FROM reason) AS ranked
                    UNION ALL
                    SELECT '00000000-0000-0000-0000-000000000000'::uuid, NULL, NULL, NULL,
                           %(entries_dropped)s::bigint
                     WHERE %(entries_dropped)s::bigint > 0) AS placed
     GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + excluded.count
)
SELECT status, processed_rows, error_count FROM applied
UNION ALL
-- Applied before: the row as it stands (read only when nothing was updated).
SELECT status, processed_rows, error_count FROM import_job
 WHERE id = %(id)s::uuid AND NOT EXISTS (SELECT FROM applied);
