-- Keep every error entry of a job, in a table of its own, and exact counts
-- of why they failed. The job's errors column stays the bounded array of
-- its first entries; the log holds all of them (up to the repository's
-- error_log_limit), one row per entry, in recording order.
-- depends: importjob-0008-hot-flushes
--
-- import_job gets two counters a flush writes, neither indexed, so flushes
-- stay HOT updates: errors_recorded numbers the entries (the log's n) and
-- errors_logged counts those the log holds. New columns with a constant
-- default: metadata only (PostgreSQL 11+). Their CHECKs are added NOT VALID
-- (no scan under the lock) and validated by 0010.
-- The two tables are new: nobody can hold a lock on them. Their foreign keys
-- take SHARE ROW EXCLUSIVE on import_job for an instant; lock_timeout bounds
-- the wait for it rather than letting the writes behind it queue.

SET LOCAL lock_timeout = '2s';

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN errors_logged bigint NOT NULL DEFAULT 0;

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN errors_recorded bigint NOT NULL DEFAULT 0;

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD CONSTRAINT import_job_errors_logged_check
    CHECK (errors_logged >= 0 AND errors_logged <= errors_recorded) NOT VALID;

-- One row per error entry; (job_id, n) is recording order, n from 1 with
-- errors_recorded. Deleted with its job.
-- squawk-ignore require-statement-timeout
CREATE TABLE import_job_error (
    job_id uuid   NOT NULL,
    n      bigint NOT NULL,
    entry  jsonb  NOT NULL,
    CONSTRAINT import_job_error_pkey PRIMARY KEY (job_id, n),
    CONSTRAINT import_job_error_job_id_fkey FOREIGN KEY (job_id)
        REFERENCES import_job (id) ON DELETE CASCADE
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
    CONSTRAINT import_job_error_group_pkey PRIMARY KEY (job_id, key),
    CONSTRAINT import_job_error_group_job_id_fkey FOREIGN KEY (job_id)
        REFERENCES import_job (id) ON DELETE CASCADE
);
