-- advance_entries: advance (see advance.sql) for a batch that carries error
-- entries: add to a job's counters and record the entries, in SQL, so any
-- number of workers can report into one job. The entries take the job's
-- next numbers (errors_recorded). The first ones the column has room for
-- (import_job_error_fit, migration 0018) go to its head only; the rest
-- are counted in errors_dropped with the entries_dropped the caller left
-- out already, written to the job's error log (import_job_error) up to
-- error_log_limit (NULL: no limit), and counted in their group of (type,
-- field, message) (import_job_error_group; past max_groups groups per job,
-- under the all-zero "other" key). A job from before 0018 (errors_head
-- NULL) has no head: every entry is logged and counted, the first ones
-- also kept in the column. The entries_dropped a caller left out (a
-- tracker's buffer past the log's limit) come after the batch's entries:
-- they take their numbers and count under "other", their reasons unknown.
-- When a worker is named and the job is processing, it records the worker
-- and its heartbeat.
-- A batch may carry a key and a number (a tracker's flush): the job applies a
-- key's batches in increasing number only, so a batch sent again after its
-- reply was lost changes nothing, in the log and the groups either. The check
-- runs on the locked, newest row; the log and the groups are written from
-- what the update returns, so they follow it exactly.
-- A batch may carry a checkpoint (set_checkpoint; NULL clears it), stored
-- in the same UPDATE as the counts it covers.
-- Nothing here grows with the log or the groups: the reasons of the entries
-- past the head are looked up by key (import_job_error_reasons, inlined,
-- and not run for a batch the head takes whole), and the job's error_groups
-- counts the places handed out, under the row's lock.
-- Returns the job's status, processed_rows and error_count (after the
-- change, or as they are when the batch was applied already: a tracker's
-- error budget reads them), or no row when no job has this id.
WITH applied AS (
    UPDATE import_job
       SET processed_rows = processed_rows + %(processed)s::bigint,
           success_count = success_count + %(success)s::bigint,
           error_count = error_count + %(errors)s::bigint,
           (errors, errors_dropped, errors_head, errors_logged, errors_recorded,
                error_groups) = (
               SELECT CASE
                          -- No room, or nothing to append: the stored value stays
                          -- as it is, unrewritten.
                          WHEN fit = 0 THEN errors
                          -- All of them fit (the common case): appended as they came.
                          WHEN fit = size THEN errors || %(entries)s::jsonb
                          -- Some fit: the first ones, in order.
                          ELSE errors || jsonb_path_query_array(
                              %(entries)s::jsonb, '$[0 to $last]', jsonb_build_object('last', fit - 1))
                      END,
                      errors_dropped + %(entries_dropped)s::bigint + size - fit,
                      errors_head + fit,
                      -- The head's entries, or the log's (past the head, up to its
                      -- limit) if more.
                      errors_logged + greatest(
                          CASE WHEN errors_head IS NULL THEN 0 ELSE fit END,
                          least(errors_recorded + size,
                                coalesce(%(error_log_limit)s::bigint, 9223372036854775807))
                            - errors_recorded),
                      errors_recorded + size + %(entries_dropped)s::bigint,
                      -- A place for each reason new to the job among the entries
                      -- past the head, whether or not one is left.
                      error_groups + CASE
                          WHEN errors_head IS NOT NULL AND fit = size THEN 0
                          ELSE (SELECT count(place) FROM import_job_error_reasons(id,
                                  jsonb_path_query_array(%(entries)s::jsonb, '$[$head to last]',
                                      jsonb_build_object('head', CASE WHEN errors_head IS NULL
                                                                      THEN 0 ELSE fit END))))
                      END
                 -- The batch's size, and how many of its entries the column takes
                 -- (reading the row's old values).
                 FROM (SELECT jsonb_array_length(%(entries)s::jsonb) AS size,
                              import_job_error_fit(errors, errors_head, errors_recorded,
                                                   %(max_errors)s::bigint, %(entries)s::jsonb) AS fit
                      ) AS batch),
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
    RETURNING id, status, processed_rows, error_count, errors_recorded, error_groups,
              -- How many of the batch's entries the head took: the ones numbered
              -- up to it (the batch's first is errors_recorded less its size, +1).
              greatest(0, coalesce(errors_head, 0) - errors_recorded
                          + jsonb_array_length(%(entries)s::jsonb)
                          + %(entries_dropped)s::bigint) AS skip
), logged AS (
    -- The rest, numbered on from the head's, up to the log's limit.
    INSERT INTO import_job_error (job_id, n, entry)
    SELECT id, n, value
      FROM (SELECT applied.id, item.value,
                   applied.errors_recorded - jsonb_array_length(%(entries)s::jsonb)
                     - %(entries_dropped)s::bigint + item.n AS n
              FROM applied,
                   jsonb_array_elements(%(entries)s::jsonb) WITH ORDINALITY AS item (value, n)
             WHERE item.n > applied.skip) AS numbered
     WHERE n <= coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
), reason AS (
    SELECT applied.id, applied.error_groups, reasons.*
      FROM applied,
           import_job_error_reasons(applied.id, jsonb_path_query_array(
               %(entries)s::jsonb, '$[$skip to last]', jsonb_build_object('skip', applied.skip))
           ) AS reasons
     -- Not even called for a batch the head took whole.
     WHERE applied.skip < jsonb_array_length(%(entries)s::jsonb)
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
