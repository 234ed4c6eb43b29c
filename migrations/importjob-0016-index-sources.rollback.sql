-- Undo importjob-0016-index-sources.
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_source_sha256;

DROP INDEX CONCURRENTLY IF EXISTS import_job_source_once;
