-- Outside a transaction, as importjob-0009-claim-round-column says.
SET lock_timeout = '2s';
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_owner_round;
DROP INDEX CONCURRENTLY IF EXISTS ix_import_job_claim;
ALTER TABLE import_job DROP COLUMN IF EXISTS claim_round;
RESET lock_timeout;
