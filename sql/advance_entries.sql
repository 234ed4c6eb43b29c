-- advance_entries: advance (see advance.sql) for a batch that carries error
-- entries: add to a job's counters and record the entries, in SQL, so any
-- number of workers can report into one job. The entries take the job's
-- next numbers (errors_recorded), then the entries_dropped the caller left
-- out already (a tracker's buffer past the log's limit). Each entry is
-- written to the job's error log while its number is within
-- error_log_limit (NULL: no limit), goes into the errors array while that
-- has room (import_job_errors_room; the first ones, in order), and is
-- counted under its reason (type, field, message) in import_job_error_group:
-- a reason new to the job takes its next place, past max_groups "other";
-- the left-out entries count under "other", their reasons unknown.
-- When a worker is named and the job is processing, it records the worker
-- and its heartbeat.
-- A batch may carry a key and a number (a tracker's flush): the job applies a
-- key's batches in increasing number only, so a batch sent again after its
-- reply was lost changes nothing, in the log and the groups either. The check
-- runs on the locked, newest row; the log and the groups are written from
-- what the update returns, so they follow it exactly.
-- A batch may carry a checkpoint (set_checkpoint; NULL clears it), stored
-- in the same UPDATE as the counts it covers. Skipped rows and rows per
-- outcome label add up as in advance.sql.
-- Nothing here grows with the log or the groups: the batch's reasons are
-- looked up by key (import_job_error_reasons), and error_groups counts the
-- places handed out, under the row's lock.
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
           (errors, errors_recorded, errors_logged, errors_dropped, error_groups) = (
               SELECT CASE
                          WHEN fit = 0 THEN errors
                          WHEN fit = size THEN errors || %(entries)s::jsonb
                          ELSE errors || jsonb_path_query_array(
                              %(entries)s::jsonb, '$[0 to $last]', jsonb_build_object('last', fit - 1))
                      END,
                      errors_recorded + size + %(entries_dropped)s::bigint,
                      errors_logged + greatest(0, least(
                          size, coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
                                - errors_recorded)),
                      errors_dropped + size - fit + %(entries_dropped)s::bigint,
                      -- A place for each reason new to the job, whether or not
                      -- one is left.
                      error_groups + (SELECT count(place)
                                        FROM import_job_error_reasons(id, %(entries)s::jsonb))
                 -- The batch's size, and how many of its entries the array takes
                 -- (reading the row's old values).
                 FROM (SELECT size, least(size, import_job_errors_room(
                                  errors, errors_dropped, %(max_errors)s::bigint)) AS fit
                         FROM (SELECT jsonb_array_length(%(entries)s::jsonb) AS size) AS given
                      ) AS batch),
           heartbeat_at = CASE WHEN %(worker_id)s::text IS NOT NULL AND status = 'processing'
                               THEN now() ELSE heartbeat_at END,
           worker_id = CASE WHEN %(worker_id)s::text IS NOT NULL AND status = 'processing'
                            THEN %(worker_id)s::text ELSE worker_id END,
           applied_batches = CASE WHEN %(batch_key)s::text IS NULL THEN applied_batches
                                  ELSE jsonb_set(applied_batches, ARRAY[%(batch_key)s::text],
                                                 to_jsonb(%(batch_number)s::bigint)) END,
           checkpoint = CASE WHEN %(set_checkpoint)s::boolean THEN %(checkpoint)s::jsonb
                             ELSE checkpoint END,
           updated_at = now()
     WHERE id = %(id)s::uuid
       AND (%(batch_key)s::text IS NULL
            OR coalesce((applied_batches ->> %(batch_key)s::text)::bigint, 0)
               < %(batch_number)s::bigint)
    RETURNING id, status, processed_rows, error_count, error_groups,
              -- The number before the batch's first entry.
              errors_recorded - jsonb_array_length(%(entries)s::jsonb)
                - %(entries_dropped)s::bigint AS before
), logged AS (
    INSERT INTO import_job_error (job_id, n, entry)
    SELECT applied.id, applied.before + item.n, item.value
      FROM applied,
           jsonb_array_elements(%(entries)s::jsonb) WITH ORDINALITY AS item (value, n)
     WHERE applied.before + item.n <= coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
), reason AS (
    SELECT applied.id, applied.error_groups, reasons.*
      FROM applied, import_job_error_reasons(applied.id, %(entries)s::jsonb) AS reasons
), counted AS (
    -- A new reason takes the next place, in the order the batch first shows
    -- it (the places before the batch's are the returned error_groups less
    -- its new ones); past max_groups it counts under "other".
    INSERT INTO import_job_error_group AS g (job_id, key, type, field, message, count)
    SELECT %(id)s::uuid, key, type, field, message, sum(count)::bigint
      FROM (SELECT CASE WHEN fits THEN key
                        ELSE '00000000-0000-0000-0000-000000000000'::uuid END AS key,
                   CASE WHEN fits THEN type END AS type,
                   CASE WHEN fits THEN field END AS field,
                   CASE WHEN fits THEN message END AS message,
                   count
              FROM (SELECT reason.*,
                           known OR error_groups - (SELECT count(place) FROM reason) + place
                                    <= %(max_groups)s::bigint AS fits
                      FROM reason) AS ranked
            UNION ALL
            -- The entries the caller left out, when the job was updated.
            SELECT '00000000-0000-0000-0000-000000000000'::uuid, NULL, NULL, NULL,
                   %(entries_dropped)s::bigint
             WHERE %(entries_dropped)s::bigint > 0 AND EXISTS (SELECT FROM applied)) AS placed
     GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + excluded.count
)
SELECT status, processed_rows, error_count FROM applied
UNION ALL
-- Applied before: the row as it stands (read only when nothing was updated).
SELECT status, processed_rows, error_count FROM import_job
 WHERE id = %(id)s::uuid AND NOT EXISTS (SELECT FROM applied);
