-- Undo importjob-0009-one-row-check: the one CHECK and its function go;
-- the eleven constraints, which 0009 left in place, hold alone again.

SET LOCAL lock_timeout = '2s';

ALTER TABLE import_job DROP CONSTRAINT IF EXISTS import_job_check;

DROP FUNCTION IF EXISTS import_job_valid(
    text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb, timestamptz, timestamptz);
