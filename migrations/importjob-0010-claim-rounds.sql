-- Claims go round the owners, so that one owner's thousands of waiting jobs
-- do not starve another's one (jobs without an owner are one owner of their
-- own). A job becoming pending takes a round (claim_round): one after its
-- owner's last waiting job, and never one before the round the workers
-- claim from now (the lowest waiting), so an owner that had nothing
-- waiting joins the current round rather than jumping the queue, and an
-- owner with 10,000 jobs waiting holds 10,000 rounds, one job each.
-- claim_next takes the lowest round, oldest job first. A job handed back to
-- pending (a worker stopping, a requeue) goes just before the current
-- round: its turn came already, so it is claimed next. Nothing is counted
-- per owner, so no write waits on another owner's or another transaction's.
-- Safe on a live table: a function, two triggers, and the rounds of the
-- jobs pending now, by owner in creation order.

SET LOCAL lock_timeout = '2s';
SET LOCAL statement_timeout = '60s';

CREATE FUNCTION import_job_claim_round() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    current_round bigint := (SELECT min(claim_round) FROM import_job
                              WHERE status = 'pending' AND chunks IS NULL);
    last_round bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Two lookups rather than IS NOT DISTINCT FROM, which no index serves.
        IF NEW.owner IS NULL THEN
            last_round := (SELECT max(claim_round) FROM import_job
                            WHERE owner IS NULL AND status = 'pending' AND chunks IS NULL);
        ELSE
            last_round := (SELECT max(claim_round) FROM import_job
                            WHERE owner = NEW.owner AND status = 'pending' AND chunks IS NULL);
        END IF;
        NEW.claim_round := greatest(last_round + 1, current_round, 1);
    ELSE
        NEW.claim_round := coalesce(current_round - 1, NEW.claim_round, 1);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER import_job_created_round
    BEFORE INSERT ON import_job
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND NEW.chunks IS NULL)
    EXECUTE FUNCTION import_job_claim_round();

CREATE TRIGGER import_job_back_to_pending_round
    BEFORE UPDATE OF status ON import_job
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND OLD.status <> 'pending' AND NEW.chunks IS NULL)
    EXECUTE FUNCTION import_job_claim_round();

UPDATE import_job AS job
   SET claim_round = waiting.round
  FROM (SELECT id, row_number() OVER (PARTITION BY owner ORDER BY created_at, id) AS round
          FROM import_job
         WHERE status = 'pending' AND chunks IS NULL) AS waiting
 WHERE job.id = waiting.id;
