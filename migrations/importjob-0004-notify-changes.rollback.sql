-- Undo importjob-0004-notify-changes.
SET LOCAL lock_timeout = '5s';

DROP TRIGGER import_job_notify ON import_job;

DROP FUNCTION import_job_notify();
