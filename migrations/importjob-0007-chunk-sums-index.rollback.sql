-- Outside a transaction, as importjob-0007-chunk-sums-index says.
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_processing_chunk;
