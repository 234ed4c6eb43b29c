-- Outside a transaction, as importjob-0003-owners-outcomes-indexes says.
-- Put back the file-once index of every owner alike, then drop the indexes
-- importjob-0003 built, without blocking writes. The rules stay, validated:
-- importjob-0002's rollback drops them. Each statement can run again.
DROP INDEX CONCURRENTLY IF EXISTS import_job_source_once;
CREATE UNIQUE INDEX CONCURRENTLY import_job_source_once ON import_job (source_sha256)
    WHERE unique_source AND status IN ('pending', 'processing', 'completed');
DROP INDEX CONCURRENTLY IF EXISTS import_job_source_once_per_owner;
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_metadata;
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_owner_status;
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_owner;
