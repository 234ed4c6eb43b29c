-- Serve the newest-first listing of all jobs (importjob list) from an index,
-- built without blocking writes on a live table.
-- depends: importjob-0004-notify-changes
-- transactional: false

CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_import_job_created_at
    ON import_job (created_at, id);
