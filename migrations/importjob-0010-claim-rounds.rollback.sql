-- Drop what importjob-0010-claim-rounds added; the rounds stay in
-- their column until importjob-0009-claim-round-column's rollback drops it.
SET LOCAL lock_timeout = '2s';
DROP TRIGGER import_job_back_to_pending_round ON import_job;
DROP TRIGGER import_job_created_round ON import_job;
DROP FUNCTION import_job_claim_round();
