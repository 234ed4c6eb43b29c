-- Validate the errors_dropped CHECK and build the indexes that rescue_stale
-- and purge_finished use, without blocking writes on a live table.
-- depends: importjob-0002-track-workers
-- transactional: false
--
-- CREATE INDEX CONCURRENTLY cannot run in a transaction. IF NOT EXISTS lets
-- the migration be run again after an interruption.

ALTER TABLE import_job VALIDATE CONSTRAINT import_job_errors_dropped_check;

-- rescue_stale: PROCESSING jobs whose last heartbeat is older than a cutoff.
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_import_job_heartbeat
    ON import_job (heartbeat_at) WHERE status = 'processing';

-- purge_finished: terminal jobs that ended before a cutoff.
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_import_job_completed_at
    ON import_job (completed_at) WHERE completed_at IS NOT NULL;
