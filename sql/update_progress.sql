-- update_progress: set a job's counters to absolute values.
-- total_rows changes only when a value is given. Returns no row; the
-- caller reads the row count to tell an unknown id.
UPDATE import_job
   SET processed_rows = %(processed_rows)s::bigint,
       success_count = %(success_count)s::bigint,
       error_count = %(error_count)s::bigint,
       total_rows = coalesce(%(total_rows)s::bigint, total_rows),
       updated_at = now()
 WHERE id = %(id)s::uuid;
