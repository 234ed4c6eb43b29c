-- Bring a database built by importjob's pre-release migrations
-- (importjob-0001-create-import-job to importjob-0018-errors-head) to the
-- 1.0 schema (importjob-0001-baseline, schema.sql), in place:
-- importjob.schema.apply_migrations runs this file in one transaction,
-- with the yoyo bookkeeping, when it finds the whole pre-release chain
-- applied. Every job, count and error entry stays.
--
-- No writer may move an entry while they move: the job table is locked
-- for the transaction (readers wait too; the moves are one pass each).
SET LOCAL lock_timeout = '10s';
LOCK TABLE import_job, import_job_error, import_job_error_group IN ACCESS EXCLUSIVE MODE;

-- The pre-release kept a job's first entries (numbered 1 to errors_head)
-- only in its errors column, its last errors_head elements. In 1.0 every
-- entry is a row of the log, counted by its reason: copy them there.
CREATE TEMPORARY TABLE importjob_head ON COMMIT DROP AS
SELECT job.id AS job_id, item.n - (jsonb_array_length(job.errors) - job.errors_head) AS n,
       item.value AS entry
  FROM import_job AS job,
       jsonb_array_elements(job.errors) WITH ORDINALITY AS item (value, n)
 WHERE job.errors_head > 0
   AND item.n > jsonb_array_length(job.errors) - job.errors_head;

INSERT INTO import_job_error (job_id, n, entry)
SELECT job_id, n, entry FROM importjob_head;

INSERT INTO import_job_error_group AS g (job_id, key, type, field, message, count)
SELECT job_id, import_job_error_key(type, field, message), type, field, message, count(*)
  FROM (SELECT job_id, entry ->> 'type' AS type, entry ->> 'field' AS field,
               entry ->> 'message' AS message
          FROM importjob_head) AS reasons
 GROUP BY job_id, type, field, message
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + excluded.count;

UPDATE import_job AS job
   SET error_groups = greatest(job.error_groups, placed.groups)
  FROM (SELECT job_id, count(*) AS groups
          FROM import_job_error_group
         WHERE key <> '00000000-0000-0000-0000-000000000000'::uuid
           AND job_id IN (SELECT job_id FROM importjob_head)
         GROUP BY job_id) AS placed
 WHERE job.id = placed.job_id;

-- The row's rules become CHECK constraints; the log and the groups go
-- with their job by foreign key.
DROP TRIGGER import_job_rules ON import_job;
DROP TRIGGER import_job_counts_check ON import_job;
DROP TRIGGER import_job_errors_check ON import_job;
DROP TRIGGER import_job_source_check ON import_job;
DROP TRIGGER import_job_forget_errors ON import_job;
DROP FUNCTION import_job_rules();
DROP FUNCTION import_job_errors_refused();
DROP FUNCTION import_job_source_refused();
DROP FUNCTION import_job_forget_errors();
DROP FUNCTION import_job_error_fit(jsonb, bigint, bigint, bigint, jsonb);
ALTER TABLE import_job DROP COLUMN errors_head;

ALTER TABLE import_job
    ADD CONSTRAINT import_job_status_check
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    ADD CONSTRAINT import_job_source_type_check CHECK (source_type IN ('csv', 'json', 'text')),
    ADD CONSTRAINT import_job_filename_check CHECK (char_length(filename) BETWEEN 1 AND 255),
    ADD CONSTRAINT import_job_total_rows_check CHECK (total_rows >= 0),
    ADD CONSTRAINT import_job_processed_rows_check CHECK (processed_rows >= 0),
    ADD CONSTRAINT import_job_success_count_check CHECK (success_count >= 0),
    ADD CONSTRAINT import_job_error_count_check CHECK (error_count >= 0),
    ADD CONSTRAINT import_job_errors_check CHECK (jsonb_typeof(errors) = 'array'),
    ADD CONSTRAINT import_job_errors_dropped_check CHECK (errors_dropped >= 0),
    ADD CONSTRAINT import_job_completed_at_check
        CHECK ((status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL)),
    ADD CONSTRAINT import_job_started_at_check
        CHECK (status <> 'processing' OR started_at IS NOT NULL),
    ADD CONSTRAINT import_job_source_sha256_check CHECK (source_sha256 ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT import_job_source_size_check CHECK (source_size >= 0);

ALTER TABLE import_job_error
    ADD CONSTRAINT import_job_error_job_id_fkey FOREIGN KEY (job_id)
        REFERENCES import_job (id) ON DELETE CASCADE;
ALTER TABLE import_job_error_group
    ADD CONSTRAINT import_job_error_group_job_id_fkey FOREIGN KEY (job_id)
        REFERENCES import_job (id) ON DELETE CASCADE;

CREATE FUNCTION import_job_errors_room(errors jsonb, errors_dropped bigint, max_errors bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN errors_dropped > 0 THEN 0
                ELSE greatest(0, max_errors - jsonb_array_length(errors)) END
$$;
