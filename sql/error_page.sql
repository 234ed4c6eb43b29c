-- error_page: one keyset page of a job's error log: the entries numbered
-- after `after`, at most batch of them, in recording order. The head's
-- (numbered 1 to errors_head, migration 0018) are the last errors_head
-- elements of the errors column; the rest are read through the log's
-- primary key (job_id, n). A job from before 0018 (errors_head NULL) has
-- every entry in the log.
-- Returns no row when no job has this id; one row of NULLs when it has no
-- entries past `after`; else (n, entry) rows.
SELECT page.n, page.entry
  FROM import_job AS job
  LEFT JOIN LATERAL (
      (SELECT item.n - head.given AS n, item.value AS entry
         -- The column is read (and detoasted) once, and only for a page
         -- that starts in the head.
         -- OFFSET 0: computed once, not inlined into the filter of each element.
         FROM (SELECT jsonb_array_length(job.errors) - job.errors_head AS given OFFSET 0) AS head,
              jsonb_array_elements(CASE WHEN %(after)s::bigint < job.errors_head THEN job.errors END)
                  WITH ORDINALITY AS item (value, n)
        WHERE item.n > head.given + %(after)s::bigint
        ORDER BY item.n
        LIMIT %(batch)s::bigint)
      UNION ALL
      (SELECT n, entry
         FROM import_job_error
        WHERE job_id = job.id AND n > greatest(%(after)s::bigint, coalesce(job.errors_head, 0))
        ORDER BY n
        LIMIT %(batch)s::bigint)
      ORDER BY n
      LIMIT %(batch)s::bigint) AS page ON true
 WHERE job.id = %(id)s::uuid
 ORDER BY page.n;
