-- Drop what importjob-0004-chunks added: every chunk goes with its column
-- (a parent stays, as a job without chunks).
SET LOCAL lock_timeout = '2s';
DROP VIEW import_job_summed;
-- Notify each job's own channel only, as importjob-0001-baseline did.
CREATE OR REPLACE FUNCTION import_job_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    job_id uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    PERFORM pg_notify('import_job_' || replace(job_id::text, '-', ''), job_id::text);
    RETURN NULL;
END
$$;
DROP TRIGGER import_job_chunk_moved ON import_job;
DROP FUNCTION import_job_chunk_moved();
DELETE FROM import_job WHERE parent_id IS NOT NULL;
ALTER TABLE import_job
    DROP COLUMN ended_by,
    DROP COLUMN keep_going,
    DROP COLUMN chunks,
    DROP COLUMN chunk_index,
    DROP COLUMN chunk,
    DROP COLUMN parent_id;
