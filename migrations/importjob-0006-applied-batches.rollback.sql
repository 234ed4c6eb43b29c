-- Undo importjob-0006-applied-batches: trackers' flushes are then at least
-- once again (a batch whose reply was lost is counted on every retry).
SET LOCAL lock_timeout = '2s';

ALTER TABLE import_job DROP COLUMN applied_batches;
