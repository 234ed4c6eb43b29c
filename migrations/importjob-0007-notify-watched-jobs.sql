-- Notify only the jobs someone watches. A NOTIFY takes the database-wide
-- notify lock at commit and holds it through the WAL flush, so notifying
-- commits queue behind one another across the whole cluster; watching is
-- rare and writing constant, so the cost now follows the watching.
-- depends: importjob-0006-applied-batches
--
-- A watcher (repo.watch) registers its job here, refreshes the row while it
-- listens and deletes it when done; a watcher that dies leaves a row that
-- expires (expires_at) and is deleted by the next registration. The trigger
-- looks the job up through the primary key and notifies only when a live
-- registration exists. INSERT no longer fires it: no one can watch a job
-- that does not exist yet.

SET LOCAL lock_timeout = '2s';

-- A new table: nothing else can see it before the commit.
-- squawk-ignore require-statement-timeout
CREATE TABLE import_job_watch (
    job_id     uuid        NOT NULL,
    watcher    uuid        NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT import_job_watch_pkey PRIMARY KEY (job_id, watcher)
);

-- squawk-ignore require-statement-timeout
COMMENT ON TABLE import_job_watch IS
    'Jobs followed by a running repo.watch, one row per watcher (importjob).';

-- Catalog changes only; the trigger's brief lock on import_job is bounded
-- by lock_timeout.
-- squawk-ignore require-statement-timeout
CREATE OR REPLACE FUNCTION import_job_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    IF EXISTS (SELECT FROM import_job_watch
                WHERE job_id = changed AND expires_at > now()) THEN
        PERFORM pg_notify('import_job_' || replace(changed::text, '-', ''), changed::text);
    END IF;
    RETURN NULL;
END
$$;

-- squawk-ignore require-statement-timeout
CREATE OR REPLACE TRIGGER import_job_notify
    AFTER UPDATE OR DELETE ON import_job
    FOR EACH ROW EXECUTE FUNCTION import_job_notify();
