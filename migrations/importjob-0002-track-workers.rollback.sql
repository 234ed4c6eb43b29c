-- Undo importjob-0002-track-workers: the constraint goes with its column.
SET LOCAL lock_timeout = '5s';

ALTER TABLE import_job
    DROP COLUMN errors_dropped,
    DROP COLUMN worker_id,
    DROP COLUMN heartbeat_at;
