-- Let a flush update its job row in place (a HOT update): it changes no
-- indexed column once heartbeat_at's index is gone, and a fillfactor of 70
-- leaves room on each page for the new row version.
-- depends: importjob-0007-notify-watched-jobs
-- transactional: false
-- squawk-disable-assume-in-transaction
--
-- rescue_stale still reads only the PROCESSING jobs, through
-- ix_import_job_status (status, created_at, id), and checks their heartbeat
-- there: running jobs are few beside the finished ones. The fillfactor
-- applies to pages written from now on; existing pages keep their rows.

-- Setting a storage parameter takes SHARE UPDATE EXCLUSIVE, which lets reads
-- and writes go on while it waits and while it works: a timeout would only
-- abort it. Setting the same value again does nothing, so a re-run is safe.
-- squawk-ignore require-lock-timeout, require-statement-timeout, prefer-robust-stmts
ALTER TABLE import_job SET (fillfactor = 70);

-- CONCURRENTLY waits for the queries using the index without blocking
-- writes; IF EXISTS makes a re-run after an interruption safe.
-- squawk-ignore require-lock-timeout, require-statement-timeout
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_heartbeat;
