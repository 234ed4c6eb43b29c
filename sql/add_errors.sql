-- add_errors: append a batch of error entries to a job, the counters left
-- as they are (add_error and add_errors). Entries are kept up to
-- max_errors, oldest first; the ones past the bound are counted in
-- errors_dropped, as advance does. Every entry also goes to the job's error
-- log up to error_log_limit and is counted in its group, past max_groups
-- under "other": the reason, logged and counted steps are advance's (see
-- there), without the counters, the worker and the batch id.
-- Returns one row when the job exists (the caller reads the row count),
-- none when no job has this id.
WITH reason AS (
    SELECT * FROM import_job_error_reasons(%(id)s::uuid, %(entries)s::jsonb)
), applied AS (
    UPDATE import_job
       SET errors = CASE
               -- All of them fit (the common case): appended as they came.
               WHEN jsonb_array_length(errors) + jsonb_array_length(%(entries)s::jsonb)
                    <= %(max_errors)s::bigint THEN errors || %(entries)s::jsonb
               -- No room: the stored value stays as it is, unrewritten.
               WHEN jsonb_array_length(errors) >= %(max_errors)s::bigint THEN errors
               -- Some fit: the first ones, in order.
               ELSE errors || (
                   SELECT coalesce(jsonb_agg(entry.value ORDER BY entry.n), '[]'::jsonb)
                     FROM jsonb_array_elements(%(entries)s::jsonb)
                          WITH ORDINALITY AS entry (value, n)
                    WHERE entry.n <= %(max_errors)s::bigint - jsonb_array_length(errors))
           END,
           errors_dropped = errors_dropped + greatest(
               0,
               jsonb_array_length(%(entries)s::jsonb)
                 - greatest(0, %(max_errors)s::bigint - jsonb_array_length(errors))),
           errors_logged = errors_logged + greatest(0, least(
               errors_recorded + jsonb_array_length(%(entries)s::jsonb),
               coalesce(%(error_log_limit)s::bigint, 9223372036854775807)) - errors_recorded),
           errors_recorded = errors_recorded + jsonb_array_length(%(entries)s::jsonb),
           error_groups = error_groups + (SELECT count(place) FROM reason),
           updated_at = now()
     WHERE id = %(id)s::uuid
    RETURNING id, errors_recorded, error_groups
), logged AS (
    INSERT INTO import_job_error (job_id, n, entry)
    SELECT applied.id, numbered.n, numbered.value
      FROM applied,
           LATERAL (SELECT applied.errors_recorded - jsonb_array_length(%(entries)s::jsonb)
                             + item.n AS n,
                           item.value
                      FROM jsonb_array_elements(%(entries)s::jsonb)
                           WITH ORDINALITY AS item (value, n)) AS numbered
     WHERE numbered.n <= coalesce(%(error_log_limit)s::bigint, 9223372036854775807)
), counted AS (
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
                              FROM reason) AS ranked) AS placed
     GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + excluded.count
)
SELECT FROM applied;
