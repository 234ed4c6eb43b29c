-- Drop what importjob-0008-pending-notify added.
SET LOCAL lock_timeout = '2s';
DROP TRIGGER import_job_back_to_pending ON import_job;
DROP TRIGGER import_job_created_pending ON import_job;
DROP FUNCTION import_job_pending_notify();
