-- Carry the entries jobs stored before 0009 into the error log, count their
-- reasons, and validate 0009's CHECK, without long locks on a live table.
-- depends: importjob-0009-error-log
-- transactional: false
-- squawk-disable-assume-in-transaction
--
-- Jobs are taken in keyset batches of 500 by id, each batch a transaction of
-- its own (the DO block commits after each), so a row is locked only while
-- its batch is copied. A job that logged entries already (new code ran
-- first) is left as it is. Entries a job dropped before (errors_dropped)
-- are counted under the "other" group and in errors_recorded, so the log's
-- n goes on from the true recording position.

-- squawk-ignore require-lock-timeout, require-statement-timeout
DO $$
DECLARE
    last_id uuid := '00000000-0000-0000-0000-000000000000';
    batch_ids uuid[];
BEGIN
    LOOP
        SELECT array_agg(id ORDER BY id) INTO batch_ids
          FROM (SELECT id FROM import_job WHERE id > last_id ORDER BY id LIMIT 500) AS next_ids;
        EXIT WHEN batch_ids IS NULL;
        last_id := batch_ids[array_length(batch_ids, 1)];
        CREATE TEMPORARY TABLE IF NOT EXISTS backfill_job (id uuid, errors jsonb, dropped bigint)
            ON COMMIT DELETE ROWS;
        INSERT INTO backfill_job
        SELECT id, errors, errors_dropped
          FROM import_job
         WHERE id = ANY (batch_ids) AND errors_recorded = 0
           AND (jsonb_array_length(errors) > 0 OR errors_dropped > 0)
           FOR NO KEY UPDATE;
        INSERT INTO import_job_error (job_id, n, entry)
        SELECT job.id, entry.n, entry.value
          FROM backfill_job AS job,
               jsonb_array_elements(job.errors) WITH ORDINALITY AS entry (value, n);
        INSERT INTO import_job_error_group (job_id, key, type, field, message, count)
        SELECT job.id,
               md5(jsonb_build_array(entry.value ->> 'type', entry.value ->> 'field',
                                     entry.value ->> 'message')::text)::uuid,
               entry.value ->> 'type', entry.value ->> 'field', entry.value ->> 'message',
               count(*)
          FROM backfill_job AS job, jsonb_array_elements(job.errors) AS entry (value)
         GROUP BY 1, 2, 3, 4, 5;
        INSERT INTO import_job_error_group (job_id, key, count)
        SELECT id, '00000000-0000-0000-0000-000000000000', dropped
          FROM backfill_job WHERE dropped > 0;
        UPDATE import_job AS job
           SET errors_logged = jsonb_array_length(backfill_job.errors),
               errors_recorded = jsonb_array_length(backfill_job.errors) + backfill_job.dropped
          FROM backfill_job
         WHERE job.id = backfill_job.id;
        COMMIT;
    END LOOP;
END
$$;

-- SHARE UPDATE EXCLUSIVE: reads and writes go on while it scans. A re-run
-- validates again, harmlessly.
-- squawk-ignore require-lock-timeout, require-statement-timeout, prefer-robust-stmts
ALTER TABLE import_job VALIDATE CONSTRAINT import_job_errors_logged_check;
