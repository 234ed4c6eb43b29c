-- Keep every error entry of a job, in a table of its own, and exact counts
-- of why they failed. The job's errors column stays the bounded array of
-- its first entries; the log holds all of them (up to the repository's
-- error_log_limit), one row per entry, in recording order.
-- depends: importjob-0010-drop-column-checks
--
-- import_job gets three counters a flush writes, none indexed, so flushes
-- stay HOT updates: errors_recorded numbers the entries (the log's n),
-- errors_logged counts those the log holds, error_groups counts the places
-- for reasons handed out (the groups table's bound, read without counting
-- the groups). New columns with a constant default: metadata only
-- (PostgreSQL 11+). No CHECK on them: only importjob's statements write
-- them, and a CHECK of its own would cost every write to the table again
-- what 0009 saved.
-- The log and the groups have no foreign key to import_job: its per-row RI
-- check (a lookup and a row lock on the job for every entry) was most of
-- what logging added to a flush. Entries are only ever written from the row
-- a flush updated, and a statement-level trigger deletes a deleted job's
-- log and groups. The tables are new: nobody can hold a lock on them; the
-- trigger takes SHARE ROW EXCLUSIVE on import_job for an instant, and
-- lock_timeout bounds the wait for it rather than letting writes queue.

SET LOCAL lock_timeout = '2s';

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN errors_logged bigint NOT NULL DEFAULT 0;

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN errors_recorded bigint NOT NULL DEFAULT 0;

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN error_groups bigint NOT NULL DEFAULT 0;

-- One row per error entry; (job_id, n) is recording order, n from 1 with
-- errors_recorded.
-- squawk-ignore require-statement-timeout
CREATE TABLE import_job_error (
    job_id uuid   NOT NULL,
    n      bigint NOT NULL,
    entry  jsonb  NOT NULL,
    CONSTRAINT import_job_error_pkey PRIMARY KEY (job_id, n)
);

-- Exact counts of a job's entries by (type, field, message), at most about
-- a thousand groups per job; the rest count under the all-zero key (other).
-- key is the md5 of the three as a JSON array: a message may be long.
-- squawk-ignore require-statement-timeout
CREATE TABLE import_job_error_group (
    job_id  uuid   NOT NULL,
    key     uuid   NOT NULL,
    type    text,
    field   text,
    message text,
    count   bigint NOT NULL,
    CONSTRAINT import_job_error_group_pkey PRIMARY KEY (job_id, key)
);

-- A reason's key: the md5 of its type, field and message, each written as
-- its length, a colon and itself (nothing when NULL), so that no two
-- reasons share a text. Immutable operators only, so the planner inlines
-- it; one home for the statements that count reasons.
-- squawk-ignore require-statement-timeout
CREATE FUNCTION import_job_error_key(type text, field text, message text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT md5(coalesce(length(type)::text || ':' || type, '') || ','
               || coalesce(length(field)::text || ':' || field, '') || ','
               || coalesce(length(message)::text || ':' || message, ''))::uuid
$$;

-- A batch of entries' reasons for a job: one row per (type, field,
-- message) with its key, how many entries have it, whether the job has a
-- group for it, and, for a new one, its place among the batch's new ones
-- in the order the batch first shows them. A single SELECT, so the planner
-- inlines it into the statement that records the batch (advance,
-- add_errors). Grouped by text, then keyed: a key per entry costs more than
-- the grouping. The group is looked up by key with a scalar subquery: an
-- EXISTS may become a hash of all the job's groups.
-- squawk-ignore require-statement-timeout
CREATE FUNCTION import_job_error_reasons(job_id uuid, entries jsonb)
RETURNS TABLE (key uuid, type text, field text, message text, count bigint, known boolean,
               place bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT key, type, field, message, count, known,
           CASE WHEN NOT known THEN row_number() OVER (PARTITION BY known ORDER BY first) END
      FROM (SELECT keyed.*,
                   coalesce((SELECT true FROM import_job_error_group AS g
                              WHERE g.job_id = $1 AND g.key = keyed.key), false) AS known
              FROM (SELECT grouped.*,
                           import_job_error_key(grouped.type, grouped.field,
                                                grouped.message) AS key
                      FROM (SELECT item.value ->> 'type' AS type,
                                   item.value ->> 'field' AS field,
                                   item.value ->> 'message' AS message,
                                   count(*) AS count, min(item.n) AS first
                              FROM jsonb_array_elements($2) WITH ORDINALITY AS item (value, n)
                             GROUP BY 1, 2, 3) AS grouped
                    OFFSET 0) AS keyed
            OFFSET 0) AS looked_up
$$;

-- Once per DELETE statement, not per row: a flush (an UPDATE) never runs
-- it. purge_finished empties a job's log in bounded batches before it
-- deletes the job; a job deleted otherwise takes its log here, whole.
-- squawk-ignore require-statement-timeout
CREATE FUNCTION import_job_forget_errors() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM import_job_error AS e USING gone WHERE e.job_id = gone.id;
    DELETE FROM import_job_error_group AS g USING gone WHERE g.job_id = gone.id;
    RETURN NULL;
END
$$;

-- squawk-ignore require-statement-timeout
CREATE TRIGGER import_job_forget_errors
    AFTER DELETE ON import_job
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION import_job_forget_errors();
