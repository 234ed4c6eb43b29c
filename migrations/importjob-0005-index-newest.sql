-- Serve the newest-first listing of all jobs (importjob list) from an index,
-- built without blocking writes on a live table.
-- depends: importjob-0004-notify-changes
-- transactional: false
-- squawk-disable-assume-in-transaction

-- CONCURRENTLY lets reads and writes go on while it waits and builds; a
-- timeout would only abort the build, and leave an invalid index behind.
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_import_job_created_at
    ON import_job (created_at, id);
