-- Undo importjob-0009-error-log: the log and the counts of reasons go; the
-- jobs keep their bounded errors arrays.
SET LOCAL lock_timeout = '2s';

DROP TABLE import_job_error_group;

DROP TABLE import_job_error;

ALTER TABLE import_job DROP CONSTRAINT import_job_errors_logged_check;

ALTER TABLE import_job DROP COLUMN errors_recorded;

ALTER TABLE import_job DROP COLUMN errors_logged;
