-- Validate the one CHECK of 0009 against the existing rows, then drop the
-- eleven it stands for.
-- depends: importjob-0009-one-row-check
-- The eleven guarantees stay, in import_job_check:
-- squawk-ignore-file ban-drop-constraint
--
-- VALIDATE takes SHARE UPDATE EXCLUSIVE: reads and writes go on during its
-- scan. The drops then take ACCESS EXCLUSIVE, for catalog changes only,
-- held until the commit that follows at once; lock_timeout bounds the wait.

SET LOCAL lock_timeout = '2s';

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_check;

-- Every guarantee they gave, import_job_check gives, validated above.
-- squawk-ignore require-statement-timeout
ALTER TABLE import_job
    DROP CONSTRAINT import_job_status_check,
    DROP CONSTRAINT import_job_source_type_check,
    DROP CONSTRAINT import_job_filename_check,
    DROP CONSTRAINT import_job_total_rows_check,
    DROP CONSTRAINT import_job_processed_rows_check,
    DROP CONSTRAINT import_job_success_count_check,
    DROP CONSTRAINT import_job_error_count_check,
    DROP CONSTRAINT import_job_errors_dropped_check,
    DROP CONSTRAINT import_job_errors_check,
    DROP CONSTRAINT import_job_completed_at_check,
    DROP CONSTRAINT import_job_started_at_check;
