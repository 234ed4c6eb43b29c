-- Record which worker runs a job and when it last showed life, and how many
-- error entries were dropped past the bound.
-- depends: importjob-0001-create-import-job
--
-- Only metadata changes under the table lock: new nullable columns, a
-- constant default, and a CHECK added NOT VALID (validated by 0003 without
-- blocking writes). The backfill touches the few PROCESSING jobs only.

SET LOCAL lock_timeout = '5s';

-- Metadata only (PostgreSQL 11+): quick once the lock is granted, and
-- lock_timeout bounds the wait for it.
-- squawk-ignore require-statement-timeout
ALTER TABLE import_job
    ADD COLUMN heartbeat_at timestamptz,
    ADD COLUMN worker_id text,
    ADD COLUMN errors_dropped bigint NOT NULL DEFAULT 0;

ALTER TABLE import_job
    ADD CONSTRAINT import_job_errors_dropped_check CHECK (errors_dropped >= 0) NOT VALID;

-- Jobs already running count as alive since they started.
-- It runs under the ALTER's lock, but reads only the few PROCESSING jobs,
-- through ix_import_job_status.
-- squawk-ignore require-statement-timeout
UPDATE import_job SET heartbeat_at = started_at WHERE status = 'processing';
