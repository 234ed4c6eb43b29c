-- Carry the entries jobs stored before 0011 into the error log and count
-- their reasons, without long locks on a live table.
-- depends: importjob-0011-error-log
-- transactional: false
-- squawk-disable-assume-in-transaction
--
-- Jobs are taken in keyset batches of 500 by id, each batch a transaction of
-- its own (the DO block commits after each), so a row is locked only while
-- its batch is copied. A job that logged entries already (new code ran
-- first) is left as it is. Entries a job dropped before (errors_dropped)
-- are counted under the "other" group and in errors_recorded, so the log's
-- n goes on from the true recording position. A job's reasons take places
-- in the order its entries first show them, 1,000 at most (the
-- repository's MAX_ERROR_GROUPS); the rest count under "other".

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
        CREATE TEMPORARY TABLE IF NOT EXISTS backfill_group (
            job_id uuid, key uuid, type text, field text, message text, count bigint, place bigint
        ) ON COMMIT DELETE ROWS;
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
        INSERT INTO backfill_group
        SELECT job_id, key, type, field, message, count,
               row_number() OVER (PARTITION BY job_id ORDER BY first)
          FROM (SELECT job.id AS job_id,
                       md5(jsonb_build_array(entry.value ->> 'type', entry.value ->> 'field',
                                             entry.value ->> 'message')::text)::uuid AS key,
                       entry.value ->> 'type' AS type, entry.value ->> 'field' AS field,
                       entry.value ->> 'message' AS message, count(*) AS count,
                       min(entry.n) AS first
                  FROM backfill_job AS job,
                       jsonb_array_elements(job.errors) WITH ORDINALITY AS entry (value, n)
                 GROUP BY 1, 2, 3, 4, 5) AS reasons;
        INSERT INTO import_job_error_group (job_id, key, type, field, message, count)
        SELECT job_id, key, type, field, message, count FROM backfill_group WHERE place <= 1000
        UNION ALL
        SELECT job_id, '00000000-0000-0000-0000-000000000000', NULL, NULL, NULL, sum(count)
          FROM (SELECT job_id, count FROM backfill_group WHERE place > 1000
                UNION ALL
                SELECT id, dropped FROM backfill_job WHERE dropped > 0) AS other
         GROUP BY job_id;
        UPDATE import_job AS job
           SET errors_logged = jsonb_array_length(backfill_job.errors),
               errors_recorded = jsonb_array_length(backfill_job.errors) + backfill_job.dropped,
               error_groups = (SELECT count(*) FROM backfill_group
                                WHERE backfill_group.job_id = job.id)
          FROM backfill_job
         WHERE job.id = backfill_job.id;
        COMMIT;
    END LOOP;
END
$$;
