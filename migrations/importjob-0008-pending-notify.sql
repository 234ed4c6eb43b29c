-- A job that becomes pending wakes the idle workers (`importjob worker`
-- LISTENs on import_job_pending): created, or handed back (a requeue, a
-- worker stopping). The payload is empty, so a transaction creating many
-- jobs sends one notification. A parent is never claimed: it wakes nobody.
-- Safe on a live table: a function and two triggers, no row read.

SET LOCAL lock_timeout = '2s';
SET LOCAL statement_timeout = '60s';

CREATE FUNCTION import_job_pending_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('import_job_pending', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER import_job_created_pending
    AFTER INSERT ON import_job
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND NEW.chunks IS NULL)
    EXECUTE FUNCTION import_job_pending_notify();

CREATE TRIGGER import_job_back_to_pending
    AFTER UPDATE OF status ON import_job
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND OLD.status <> 'pending')
    EXECUTE FUNCTION import_job_pending_notify();
