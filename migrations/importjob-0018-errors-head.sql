-- A job's first error entries are kept once, in its errors column, not
-- also in the error log and the reason counts: the column is the head of
-- the log. Until now each of a job's first max_errors entries was written
-- three times (the column, a log row, a group's count), which made
-- add_error ~1.5x the statement that only appends to the column.
-- depends: importjob-0017-rules-where-written
--
-- errors_head counts the job's entries (numbered 1 to errors_head) that
-- only the column holds: the column's last errors_head elements (the ones
-- before them were given at create and are no entries of the log). An
-- entry goes to the head while every entry before it did and the column
-- has room; after the first that does not, every entry goes to the log and
-- its reason is counted, as before. The readers (error_page, the exports,
-- error_summary) read the head from the column and the rest from the log.
-- A job written before this migration has NULL: its log holds every entry,
-- the column only copies, and it goes on being written as before. New rows
-- take 0. Nullable with no default, then a default for new rows: both are
-- catalog changes, no rewrite and no scan; a flush writes no index with it.

SET LOCAL lock_timeout = '2s';

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN errors_head bigint;

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ALTER COLUMN errors_head SET DEFAULT 0;

-- How many of a batch of new entries a job's column takes: while the head
-- is open (or for a job from before this migration) as many as fit under
-- max_errors, else none, so that the head stays entries 1 to errors_head.
-- An empty batch or a closed head never reads the column (it may be large).
-- Immutable operators only, so the planner inlines it; one home for the
-- writers (add_error, advance_entries, rescue_stale).
-- squawk-ignore require-statement-timeout
CREATE FUNCTION import_job_error_fit(errors jsonb, errors_head bigint, errors_recorded bigint,
                                     max_errors bigint, entries jsonb)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_array_length(entries) = 0 THEN 0
                WHEN coalesce(errors_head = errors_recorded, true)
                THEN least(jsonb_array_length(entries),
                           greatest(0, max_errors - jsonb_array_length(errors)))
                ELSE 0 END
$$;
