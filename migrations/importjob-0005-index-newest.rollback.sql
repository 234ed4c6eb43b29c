-- Undo importjob-0005-index-newest.
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_created_at;
