-- count_by_status: how many imports each status holds (their chunks are
-- counted by their parent), of one owner or, when it is NULL, of every
-- owner. Each status is counted up to at_most jobs and no further, so the
-- statement reads at most that many index entries a status at any table
-- size: a count of at_most says "that many or more". Served by
-- ix_import_job_status, or ix_import_job_owner_status with an owner; run
-- unprepared, so that a NULL owner folds away. The ORDER BY is the
-- index's: without it the planner, which cannot tell a status holding
-- most jobs from one holding none, may scan the table for a rare one.
SELECT status.name,
       (SELECT count(*)
          FROM (SELECT 1
                  FROM import_job AS job
                 WHERE job.status = status.name
                   AND job.parent_id IS NULL
                   AND (%(owner)s::text IS NULL OR job.owner = %(owner)s::text)
                 ORDER BY job.created_at
                 LIMIT %(at_most)s::bigint) AS counted)
  FROM unnest(%(statuses)s::text[]) AS status (name);
