-- Drop what importjob-0002-owners-outcomes added: the owners, metadata,
-- skipped counts and outcomes of every job with them.
DROP FUNCTION import_job_outcomes_add(jsonb, jsonb, integer);
ALTER TABLE import_job
    DROP COLUMN outcomes,
    DROP COLUMN skipped_count,
    DROP COLUMN metadata,
    DROP COLUMN owner;
