-- Undo importjob-0010-drop-column-checks: the eleven constraints of 0001 and
-- 0002 again, added NOT VALID (a brief lock, no scan) and then validated
-- one by one, each in its own transaction, without blocking writes.
-- transactional: false

ALTER TABLE import_job
    ADD CONSTRAINT import_job_status_check
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')) NOT VALID,
    ADD CONSTRAINT import_job_source_type_check
        CHECK (source_type IN ('csv', 'json', 'text')) NOT VALID,
    ADD CONSTRAINT import_job_filename_check
        CHECK (char_length(filename) BETWEEN 1 AND 255) NOT VALID,
    ADD CONSTRAINT import_job_total_rows_check CHECK (total_rows >= 0) NOT VALID,
    ADD CONSTRAINT import_job_processed_rows_check CHECK (processed_rows >= 0) NOT VALID,
    ADD CONSTRAINT import_job_success_count_check CHECK (success_count >= 0) NOT VALID,
    ADD CONSTRAINT import_job_error_count_check CHECK (error_count >= 0) NOT VALID,
    ADD CONSTRAINT import_job_errors_dropped_check CHECK (errors_dropped >= 0) NOT VALID,
    ADD CONSTRAINT import_job_errors_check CHECK (jsonb_typeof(errors) = 'array') NOT VALID,
    ADD CONSTRAINT import_job_completed_at_check
        CHECK ((status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL))
        NOT VALID,
    ADD CONSTRAINT import_job_started_at_check
        CHECK (status <> 'processing' OR started_at IS NOT NULL) NOT VALID;

ALTER TABLE import_job VALIDATE CONSTRAINT import_job_status_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_source_type_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_filename_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_total_rows_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_processed_rows_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_success_count_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_error_count_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_errors_dropped_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_errors_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_completed_at_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_started_at_check;
