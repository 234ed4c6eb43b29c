-- Tell watchers when a job changes, without polling: every statement that
-- inserts, updates or deletes a row of import_job notifies the channel
-- import_job_<id, 32 hex digits> with the job's id as payload. A NOTIFY
-- is delivered when its transaction commits, and repeats of one
-- notification within a transaction fold into one.
-- depends: importjob-0003-index-workers

SET LOCAL lock_timeout = '5s';

-- Catalog changes only: a new function, then a trigger whose brief lock
-- lock_timeout bounds; neither reads the table.
-- squawk-ignore require-statement-timeout
CREATE FUNCTION import_job_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    job_id uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    PERFORM pg_notify('import_job_' || replace(job_id::text, '-', ''), job_id::text);
    RETURN NULL;
END
$$;

-- squawk-ignore require-statement-timeout
CREATE TRIGGER import_job_notify
    AFTER INSERT OR UPDATE OR DELETE ON import_job
    FOR EACH ROW EXECUTE FUNCTION import_job_notify();
