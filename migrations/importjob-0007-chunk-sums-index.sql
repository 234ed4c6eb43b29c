-- transactional: false
-- squawk-disable-assume-in-transaction
-- The index is dropped first in case a failed run left it behind, invalid,
-- which squawk cannot see.
-- squawk-ignore-file prefer-robust-stmts
--
-- The processing chunks of a parent, which a read of the parent adds to
-- its own sums (importjob-0006-chunk-sums): built concurrently, writes go
-- on meanwhile. A flush moves neither column, so it stays a HOT update.
-- Outside a transaction, so these settings last for the session: reset at
-- the end.

SET lock_timeout = '2s';
SET statement_timeout = '2h';

DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_processing_chunk;
CREATE INDEX CONCURRENTLY ix_import_job_processing_chunk ON import_job (parent_id)
    WHERE parent_id IS NOT NULL AND status = 'processing';

RESET statement_timeout;
RESET lock_timeout;
