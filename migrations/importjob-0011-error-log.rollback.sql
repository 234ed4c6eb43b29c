-- Undo importjob-0011-error-log: the log and the counts of reasons go; the
-- jobs keep their bounded errors arrays.
SET LOCAL lock_timeout = '2s';

DROP TRIGGER import_job_forget_errors ON import_job;

DROP FUNCTION import_job_forget_errors();

DROP FUNCTION import_job_error_reasons(uuid, jsonb);

DROP FUNCTION import_job_error_key(text, text, text);

DROP TABLE import_job_error_group;

DROP TABLE import_job_error;

ALTER TABLE import_job DROP COLUMN error_groups;

ALTER TABLE import_job DROP COLUMN errors_recorded;

ALTER TABLE import_job DROP COLUMN errors_logged;
