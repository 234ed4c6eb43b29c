-- transactional: false
-- squawk-disable-assume-in-transaction
-- Every statement here can run again after a failed run, which squawk
-- cannot see: validating a valid rule does nothing, and the index is
-- dropped first in case a failed run left it behind, invalid.
-- squawk-ignore-file prefer-robust-stmts
--
-- Validate importjob-0004's rules and reference, and build the index of a
-- parent's chunks concurrently: writes go on meanwhile. Outside a
-- transaction, so these settings last for the session: reset at the end.

SET lock_timeout = '2s';
SET statement_timeout = '2h';

ALTER TABLE import_job VALIDATE CONSTRAINT import_job_parent_id_fkey;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_chunk_index_check;
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_chunks_check;

-- A parent's chunks in order: its sums, children(), the end of its last chunk.
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_parent;
CREATE INDEX CONCURRENTLY ix_import_job_parent ON import_job (parent_id, chunk_index)
    WHERE parent_id IS NOT NULL;

RESET statement_timeout;
RESET lock_timeout;
