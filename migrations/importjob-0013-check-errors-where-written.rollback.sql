-- Undo importjob-0013-check-errors-where-written: the CHECK of ten rules,
-- the errors trigger and their functions go; the CHECK of 0009, which 0013
-- left in place, holds alone again.

SET LOCAL lock_timeout = '2s';

ALTER TABLE import_job DROP CONSTRAINT IF EXISTS import_job_row_check;

DROP TRIGGER IF EXISTS import_job_errors_check ON import_job;

DROP FUNCTION IF EXISTS import_job_errors_refused();

DROP FUNCTION IF EXISTS import_job_valid(
    text, text, text, bigint, bigint, bigint, bigint, bigint, timestamptz, timestamptz);
