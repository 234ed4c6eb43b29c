-- Undo importjob-0008-hot-flushes: heartbeat_at indexed again, built
-- without blocking writes, and the default fillfactor.
-- transactional: false

CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_import_job_heartbeat
    ON import_job (heartbeat_at) WHERE status = 'processing';

ALTER TABLE import_job RESET (fillfactor);
