-- Undo importjob-0007-notify-watched-jobs: every change notifies again, as
-- 0004 made it.
SET LOCAL lock_timeout = '2s';

CREATE OR REPLACE TRIGGER import_job_notify
    AFTER INSERT OR UPDATE OR DELETE ON import_job
    FOR EACH ROW EXECUTE FUNCTION import_job_notify();

CREATE OR REPLACE FUNCTION import_job_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    job_id uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    PERFORM pg_notify('import_job_' || replace(job_id::text, '-', ''), job_id::text);
    RETURN NULL;
END
$$;

DROP TABLE import_job_watch;
