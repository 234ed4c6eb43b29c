-- Drop what importjob-0011-ended-counts added.
SET LOCAL lock_timeout = '2s';
DROP TRIGGER import_job_truncated ON import_job;
DROP TRIGGER import_job_ended_deleted ON import_job;
DROP TRIGGER import_job_ended_updated ON import_job;
DROP TRIGGER import_job_ended_inserted ON import_job;
DROP FUNCTION import_job_count_ended();
DROP TABLE import_job_ended_change;
DROP TABLE import_job_ended_count;
