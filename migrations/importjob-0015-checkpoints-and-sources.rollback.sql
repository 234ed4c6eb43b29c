-- Undo importjob-0015-checkpoints-and-sources: the trigger, its function and
-- the four columns go (with the checkpoints and fingerprints they held).

SET LOCAL lock_timeout = '2s';

DROP TRIGGER IF EXISTS import_job_source_check ON import_job;

DROP FUNCTION IF EXISTS import_job_source_refused();

ALTER TABLE import_job
    DROP COLUMN IF EXISTS unique_source,
    DROP COLUMN IF EXISTS source_size,
    DROP COLUMN IF EXISTS source_sha256,
    DROP COLUMN IF EXISTS checkpoint;
