-- Undo importjob-0018-errors-head: the head's entries go back into the log
-- and their reasons into the counts (past max_groups, 1000, under "other"),
-- where the code before it reads them, then the column goes.

SET LOCAL lock_timeout = '2s';

WITH head AS (
    SELECT job.id, job.errors_recorded, job.error_groups, item.value AS entry,
           item.n - (jsonb_array_length(job.errors) - job.errors_head) AS n
      FROM import_job AS job,
           jsonb_array_elements(job.errors) WITH ORDINALITY AS item (value, n)
     WHERE job.errors_head > 0
       AND item.n > jsonb_array_length(job.errors) - job.errors_head
)
INSERT INTO import_job_error (job_id, n, entry)
SELECT id, n, entry FROM head
    ON CONFLICT (job_id, n) DO NOTHING;

-- Each job's head reasons, counted; a reason the job has no group for takes
-- the next place while there is one, else counts under "other".
WITH head AS (
    SELECT job.id, item.value ->> 'type' AS type, item.value ->> 'field' AS field,
           item.value ->> 'message' AS message
      FROM import_job AS job,
           jsonb_array_elements(job.errors) WITH ORDINALITY AS item (value, n)
     WHERE job.errors_head > 0
       AND item.n > jsonb_array_length(job.errors) - job.errors_head
), reasons AS (
    SELECT head.id, import_job_error_key(type, field, message) AS key, type, field, message,
           count(*) AS count
      FROM head
     GROUP BY 1, 2, 3, 4, 5
), placed AS (
    SELECT reasons.*,
           EXISTS (SELECT FROM import_job_error_group AS g
                    WHERE g.job_id = reasons.id AND g.key = reasons.key) AS known,
           job.error_groups
      FROM reasons JOIN import_job AS job ON job.id = reasons.id
), ranked AS (
    SELECT placed.*,
           known OR error_groups
               + row_number() OVER (PARTITION BY id, known ORDER BY count DESC, key) <= 1000 AS fits
      FROM placed
), counted AS (
    INSERT INTO import_job_error_group AS g (job_id, key, type, field, message, count)
    SELECT id, CASE WHEN fits THEN key ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
           CASE WHEN fits THEN type END, CASE WHEN fits THEN field END,
           CASE WHEN fits THEN message END, sum(count)::bigint
      FROM ranked
     GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (job_id, key) DO UPDATE SET count = g.count + excluded.count
)
UPDATE import_job AS job
   SET error_groups = job.error_groups
       + (SELECT count(*) FROM placed WHERE placed.id = job.id AND NOT placed.known)
 WHERE job.errors_head > 0;

DROP FUNCTION import_job_error_fit(jsonb, bigint, bigint, bigint, jsonb);

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job DROP COLUMN errors_head;
