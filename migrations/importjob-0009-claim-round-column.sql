-- transactional: false
-- squawk-disable-assume-in-transaction
-- Every statement here can run again after a failed run, which squawk
-- cannot see: the column is added only if missing, and each index is
-- dropped first in case a failed run left it behind, invalid.
-- squawk-ignore-file prefer-robust-stmts
--
-- The round of claims a pending job waits in (importjob-0010-claim-rounds
-- hands rounds out), and the two indexes that make a claim and a round's
-- hand-out index lookups: built concurrently, writes go on meanwhile. Only
-- pending jobs are in them, and a flush moves neither column, so flushes
-- stay HOT updates. Outside a transaction, so these settings last for the
-- session: reset at the end.

SET lock_timeout = '2s';
SET statement_timeout = '2h';

ALTER TABLE import_job ADD COLUMN IF NOT EXISTS claim_round bigint;

DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_claim;
CREATE INDEX CONCURRENTLY ix_import_job_claim ON import_job (claim_round, created_at, id)
    WHERE status = 'pending' AND chunks IS NULL;

DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_owner_round;
CREATE INDEX CONCURRENTLY ix_import_job_owner_round ON import_job (owner, claim_round)
    WHERE status = 'pending' AND chunks IS NULL;

RESET statement_timeout;
RESET lock_timeout;
