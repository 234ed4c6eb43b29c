-- add_errors: append a batch of error entries to a job, the counters left
-- as they are (add_error and add_errors). Entries are kept up to
-- max_errors, oldest first; the ones past the bound are counted in
-- errors_dropped, as advance does. A plain UPDATE, no read back: the
-- caller needs only to know that the job exists (the row count).
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
                 FROM jsonb_array_elements(%(entries)s::jsonb) WITH ORDINALITY AS entry (value, n)
                WHERE entry.n <= %(max_errors)s::bigint - jsonb_array_length(errors))
       END,
       errors_dropped = errors_dropped + greatest(
           0,
           jsonb_array_length(%(entries)s::jsonb)
             - greatest(0, %(max_errors)s::bigint - jsonb_array_length(errors))),
       updated_at = now()
 WHERE id = %(id)s::uuid;
