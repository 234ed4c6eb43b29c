-- transactional: false
-- squawk-disable-assume-in-transaction
-- Every statement here can run again after a failed run, which squawk
-- cannot see: validating a valid rule does nothing, and each index is
-- dropped first in case a failed run left it behind, invalid.
-- squawk-ignore-file prefer-robust-stmts
--
-- Validate importjob-0002's rules and build the indexes of owners and
-- metadata concurrently: writes go on meanwhile. Outside a transaction, so
-- these settings last for the session: reset at the end.

SET lock_timeout = '2s';
-- Validating and building read the whole table: bounded, but generously.
SET statement_timeout = '2h';

ALTER TABLE import_job VALIDATE CONSTRAINT import_job_owner_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_metadata_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_skipped_count_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_outcomes_check;

-- list_recent(owner=...), newest first.
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_owner;
CREATE INDEX CONCURRENTLY ix_import_job_owner ON import_job (owner, created_at, id);
-- list_by_status(owner=...) and list_recent(owner=..., status=...).
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_owner_status;
CREATE INDEX CONCURRENTLY ix_import_job_owner_status
    ON import_job (owner, status, created_at, id);
-- list_recent(metadata=...): containment (@>) of the application's fields.
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_metadata;
CREATE INDEX CONCURRENTLY ix_import_job_metadata ON import_job USING gin (metadata jsonb_path_ops);
-- create(unique_source=True): one live or completed import of a file per
-- owner (jobs without an owner are one owner of their own).
DROP INDEX CONCURRENTLY IF EXISTS import_job_source_once_per_owner;
CREATE UNIQUE INDEX CONCURRENTLY import_job_source_once_per_owner
    ON import_job (owner, source_sha256) NULLS NOT DISTINCT
    WHERE unique_source AND status IN ('pending', 'processing', 'completed');
DROP INDEX CONCURRENTLY IF EXISTS import_job_source_once;

RESET statement_timeout;
RESET lock_timeout;
