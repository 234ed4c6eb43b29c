-- add_error: append one error entry (a JSON object) to a job's errors.
-- Returns no row; the caller reads the row count to tell an unknown id.
UPDATE import_job
   SET errors = errors || jsonb_build_array(%(error)s::jsonb),
       updated_at = now()
 WHERE id = %(id)s::uuid;
