-- advance: add to a job's counters and append a batch of error entries, in
-- SQL (no read-modify-write), so any number of workers can report into one
-- job. Entries are kept in the errors column up to max_errors, oldest first;
-- the ones past that bound are only counted there, in errors_dropped, with
-- the entries_dropped the caller left out already. Every entry is also
-- written to the job's error log (import_job_error, n numbering them with
-- errors_recorded) up to error_log_limit (NULL: no limit), and counted in
-- its group of (type, field, message) (import_job_error_group; past
-- max_groups groups per job, under the all-zero "other" key). The
-- entries_dropped a caller left out (a tracker's buffer past the log's
-- limit) come after the batch's entries: they take their numbers and count
-- under "other", their reasons unknown. When a worker
-- is named and the job is processing, it records the worker and its
-- heartbeat.
-- A batch may carry a key and a number (a tracker's flush): the job applies
-- a key's batches in increasing number only, so a batch sent again after its
-- reply was lost changes nothing, in the log and the groups either. The
-- check runs on the locked, newest row; the log and the groups are written
-- from what the update returns, so they follow it exactly.
-- Returns the job's status (after the change, or as it is when the batch was
-- applied already), or no row when no job has this id.
WITH applied AS (
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
           errors_dropped = errors_dropped + %(entries_dropped)s::bigint + greatest(
               0,
               jsonb_array_length(%(entries)s::jsonb)
                 - greatest(0, %(max_errors)s::bigint - jsonb_array_length(errors))),
           -- The log takes the entries numbered up to the limit (SET reads the old values).
           errors_logged = errors_logged + greatest(0, least(
               errors_recorded + jsonb_array_length(%(entries)s::jsonb),
               coalesce(%(error_log_limit)s::bigint, 9223372036854775807)) - errors_recorded),
           errors_recorded = errors_recorded + jsonb_array_length(%(entries)s::jsonb)
                             + %(entries_dropped)s::bigint,
           heartbeat_at = CASE WHEN %(worker_id)s::text IS NOT NULL AND status = 'processing'
                               THEN now() ELSE heartbeat_at END,
           worker_id = CASE WHEN %(worker_id)s::text IS NOT NULL AND status = 'processing'
                            THEN %(worker_id)s::text ELSE worker_id END,
           applied_batches = CASE WHEN %(batch_key)s::text IS NULL THEN applied_batches
                                  ELSE jsonb_set(applied_batches, ARRAY[%(batch_key)s::text],
                                                 to_jsonb(%(batch_number)s::bigint)) END,
           updated_at = now()
     WHERE id = %(id)s::uuid
       AND (%(batch_key)s::text IS NULL
            OR coalesce((applied_batches ->> %(batch_key)s::text)::bigint, 0)
               < %(batch_number)s::bigint)
    RETURNING id, status, errors_recorded),
-- The batch's entries with their numbers in the job: RETURNING gives the
-- new errors_recorded, so the first one is that minus the batch's size
-- (entries and dropped ones), plus 1.
entry AS (
    SELECT applied.id AS job_id,
           applied.errors_recorded - jsonb_array_length(%(entries)s::jsonb)
             - %(entries_dropped)s::bigint + item.n AS n,
           item.value
      FROM applied,
           jsonb_array_elements(%(entries)s::jsonb) WITH ORDINALITY AS item (value, n)
),
logged AS (
    INSERT INTO import_job_error (job_id, n, entry)
    SELECT job_id, n, value
      FROM entry
     WHERE n <= coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
),
grouped AS (
    SELECT md5(jsonb_build_array(value ->> 'type', value ->> 'field',
                                 value ->> 'message')::text)::uuid AS key,
           value ->> 'type' AS type, value ->> 'field' AS field, value ->> 'message' AS message,
           count(*) AS count, min(n) AS first
      FROM entry
     GROUP BY 1, 2, 3, 4
),
-- A group the job has keeps counting; a new one takes a place while the job
-- has fewer than max_groups, in the order the batch first shows it.
placed AS (
    SELECT grouped.*,
           known.key IS NOT NULL
             OR row_number() OVER (PARTITION BY known.key IS NULL ORDER BY grouped.first)
                <= %(max_groups)s::bigint - (SELECT count(*) FROM import_job_error_group
                                              WHERE job_id = %(id)s::uuid) AS fits
      FROM grouped
      LEFT JOIN import_job_error_group AS known
        ON known.job_id = %(id)s::uuid AND known.key = grouped.key
),
counted AS (
    INSERT INTO import_job_error_group AS g (job_id, key, type, field, message, count)
    SELECT %(id)s::uuid, key, type, field, message, sum(count)::bigint
      FROM (SELECT CASE WHEN fits THEN key
                        ELSE '00000000-0000-0000-0000-000000000000'::uuid END AS key,
                   CASE WHEN fits THEN type END AS type,
                   CASE WHEN fits THEN field END AS field,
                   CASE WHEN fits THEN message END AS message,
                   count
              FROM placed
            UNION ALL
            SELECT '00000000-0000-0000-0000-000000000000'::uuid, NULL, NULL, NULL,
                   %(entries_dropped)s::bigint
              FROM applied
             WHERE %(entries_dropped)s::bigint > 0) AS counts
     GROUP BY key, type, field, message
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + excluded.count
)
SELECT status FROM applied
UNION ALL
-- Applied before: the row as it stands (read only when nothing was updated).
SELECT status FROM import_job
 WHERE id = %(id)s::uuid AND NOT EXISTS (SELECT FROM applied);
