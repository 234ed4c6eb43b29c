-- A file imported once: of the jobs created with unique_source, at most one
-- per fingerprint may be pending, processing or completed (a failed or
-- cancelled import does not block a new one). The index enforces it, so of
-- two concurrent creates of the same file exactly one succeeds. A second
-- index finds any job of a fingerprint, for the check against jobs created
-- without unique_source. Both hold only jobs that have a fingerprint, and
-- no column a flush writes: flushes stay HOT.
-- depends: importjob-0015-checkpoints-and-sources
-- transactional: false
-- squawk-disable-assume-in-transaction

-- CONCURRENTLY lets reads and writes go on while it waits and builds; a
-- timeout would only abort the build, and leave an invalid index behind.
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS import_job_source_once
    ON import_job (source_sha256)
    WHERE unique_source AND status IN ('pending', 'processing', 'completed');

-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_import_job_source_sha256
    ON import_job (source_sha256)
    WHERE source_sha256 IS NOT NULL;
