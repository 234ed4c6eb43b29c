-- Undo importjob-0003-index-workers. The constraint stays validated: 0002's
-- rollback drops it with its column.
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_completed_at;

DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_heartbeat;
