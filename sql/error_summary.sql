-- error_summary: the largest groups of a job's error entries, by (type,
-- field, message), largest count first (ties in key order); other is true
-- for the group that counts the entries past the job's bound on groups.
-- The counts are the groups' (the entries past the head) plus the head's,
-- grouped here from the errors column (its last errors_head elements, at
-- most max_errors, migration 0018); never the log.
-- Returns no row when no job has this id; one row of NULLs when it has no
-- entries yet.
SELECT grouped.type, grouped.field, grouped.message, grouped.count,
       grouped.key = '00000000-0000-0000-0000-000000000000'::uuid AS other
  FROM import_job AS job
  LEFT JOIN LATERAL (
      SELECT key, max(type) AS type, max(field) AS field, max(message) AS message,
             sum(count)::bigint AS count
        FROM (SELECT key, type, field, message, count
                FROM import_job_error_group
               WHERE job_id = job.id
              UNION ALL
              SELECT import_job_error_key(type, field, message), type, field, message,
                     count(*)
                FROM (SELECT item.value ->> 'type' AS type, item.value ->> 'field' AS field,
                             item.value ->> 'message' AS message
                        -- The column is read (and detoasted) once, only for a head.
                        FROM (SELECT jsonb_array_length(job.errors) - job.errors_head AS given)
                                 AS head,
                             jsonb_array_elements(CASE WHEN job.errors_head > 0
                                                       THEN job.errors END)
                                 WITH ORDINALITY AS item (value, n)
                       WHERE item.n > head.given) AS entries
               GROUP BY type, field, message) AS every
       GROUP BY key
       ORDER BY count DESC, key
       LIMIT %(limit)s::bigint) AS grouped ON true
 WHERE job.id = %(id)s::uuid;
