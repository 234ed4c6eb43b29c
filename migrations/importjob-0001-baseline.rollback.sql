-- Drop everything importjob-0001-baseline made, in reverse order: every job
-- and error entry with it.
DROP TRIGGER import_job_notify ON import_job;
DROP FUNCTION import_job_notify();
DROP FUNCTION import_job_error_reasons(uuid, jsonb);
DROP FUNCTION import_job_error_key(text, text, text);
DROP FUNCTION import_job_errors_room(jsonb, bigint, bigint);
DROP TABLE import_job_error_group;
DROP TABLE import_job_error;
DROP TABLE import_job;
