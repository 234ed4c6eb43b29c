-- Validate the CHECK of ten rules of 0013 against the existing rows, then
-- drop the CHECK of 0009 and its function, which also read errors.
-- depends: importjob-0013-check-errors-where-written
-- The guarantees stay, in import_job_row_check and the errors trigger:
-- squawk-ignore-file ban-drop-constraint
--
-- VALIDATE takes SHARE UPDATE EXCLUSIVE: reads and writes go on during its
-- scan. The drop then takes ACCESS EXCLUSIVE, for a catalog change only,
-- held until the commit that follows at once; lock_timeout bounds the wait.

SET LOCAL lock_timeout = '2s';

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_row_check;

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job DROP CONSTRAINT import_job_check;

-- Only the CHECK dropped above called it; the application never does.
-- squawk-ignore require-statement-timeout, ban-drop-function
DROP FUNCTION import_job_valid(
    text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb, timestamptz, timestamptz);
