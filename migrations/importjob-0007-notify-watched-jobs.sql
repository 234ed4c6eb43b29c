-- Notify only the jobs someone watches. A NOTIFY takes the database-wide
-- notify lock at commit and holds it through the WAL flush, so notifying
-- commits queue behind one another across the whole cluster; watching is
-- rare and writing constant, so the cost now follows the watching.
-- depends: importjob-0006-applied-batches
--
-- A watcher (repo.watch) marks its job watched until a moment 30 s ahead
-- (watched_until) and moves the mark on while it listens. The trigger's WHEN
-- condition reads the mark on the row being changed, so a change to a job
-- nobody watches queues no trigger event at all: no function call, no
-- look-up, no NOTIFY. A watcher that dies leaves a mark that lapses, and
-- nothing else behind. INSERT no longer fires the trigger: no one can watch
-- a job that does not exist yet.

SET LOCAL lock_timeout = '2s';

-- A nullable column without a default: metadata only, the lock held for an
-- instant once granted.
-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN watched_until timestamptz;

-- The trigger is dropped and made again in one transaction: no change
-- between the two goes unseen. Catalog changes only.
-- squawk-ignore require-statement-timeout
DROP TRIGGER import_job_notify ON import_job;

-- OLD: the row as it was, marked by the watcher's registration, which
-- locks the row and so orders itself before or after every writer.
-- squawk-ignore require-statement-timeout
CREATE TRIGGER import_job_notify
    AFTER UPDATE OR DELETE ON import_job
    FOR EACH ROW
    WHEN (OLD.watched_until > now())
    EXECUTE FUNCTION import_job_notify();
