-- Make a tracker's flush idempotent: per tracker (a random key), the number
-- of the last batch of counts the job applied. A batch sent again because
-- its reply was lost carries a number already applied, and adds nothing.
-- depends: importjob-0005-index-newest
--
-- A new column with a constant default: metadata only (PostgreSQL 11+), so
-- the table lock is held for an instant, and lock_timeout bounds the wait
-- for it rather than letting the queries behind it queue for long.

SET LOCAL lock_timeout = '2s';

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job
    ADD COLUMN applied_batches jsonb NOT NULL DEFAULT '{}'::jsonb;
