-- Undo importjob-0007-notify-watched-jobs: every change notifies again, as
-- 0004 made it.
SET LOCAL lock_timeout = '2s';

DROP TRIGGER import_job_notify ON import_job;

CREATE TRIGGER import_job_notify
    AFTER INSERT OR UPDATE OR DELETE ON import_job
    FOR EACH ROW EXECUTE FUNCTION import_job_notify();

ALTER TABLE import_job DROP COLUMN watched_until;
