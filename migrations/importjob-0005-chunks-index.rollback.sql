-- Outside a transaction, as importjob-0005-chunks-index says. The rules and
-- the reference stay, validated: importjob-0004's rollback drops them.
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_parent;
