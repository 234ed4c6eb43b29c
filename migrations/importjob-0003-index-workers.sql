-- Validate the errors_dropped CHECK and build the indexes that rescue_stale
-- and purge_finished use, without blocking writes on a live table.
-- depends: importjob-0002-track-workers
-- transactional: false
-- squawk-disable-assume-in-transaction
--
-- CREATE INDEX CONCURRENTLY cannot run in a transaction. IF NOT EXISTS lets
-- the migration run again after an interruption, but a build that failed
-- leaves an INVALID index under its name, which a re-run then skips: check
-- pg_index.indisvalid and REINDEX INDEX CONCURRENTLY it (README, Migrations).

-- It and the index builds take SHARE UPDATE EXCLUSIVE, which lets reads and
-- writes go on while they wait and while they work: a timeout would only
-- abort them. Validating a valid constraint again does nothing, so a re-run
-- after an interruption is safe.
-- squawk-ignore require-lock-timeout, require-statement-timeout, prefer-robust-stmts
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_errors_dropped_check;

-- rescue_stale: PROCESSING jobs whose last heartbeat is older than a cutoff.
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_import_job_heartbeat
    ON import_job (heartbeat_at) WHERE status = 'processing';

-- purge_finished: terminal jobs that ended before a cutoff.
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_import_job_completed_at
    ON import_job (completed_at) WHERE completed_at IS NOT NULL;
