-- error_page: one keyset page of a job's error log: the entries numbered
-- after `after`, at most batch of them, in recording order, read through
-- the log's primary key (job_id, n).
-- Returns no row when no job has this id; one row of NULLs when it has no
-- entries past `after`; else (n, entry) rows.
SELECT page.n, page.entry
  FROM import_job AS job
  LEFT JOIN LATERAL (
      SELECT n, entry
        FROM import_job_error
       WHERE job_id = job.id AND n > %(after)s::bigint
       ORDER BY n
       LIMIT %(batch)s::bigint) AS page ON true
 WHERE job.id = %(id)s::uuid
 ORDER BY page.n;
