-- error_summary: the largest groups of a job's error entries, by (type,
-- field, message), largest count first (ties: the other first, then in
-- text order, NULL first); other is true for the group that counts the
-- entries past the job's bound on groups. The counts are the groups' (the
-- entries past the head) plus the head's, the errors column's last
-- errors_head elements (at most max_errors, migration 0018), grouped here
-- by their texts: no reason's key is computed, never the log table read.
-- Returns no row when no job has this id; one row of NULLs when it has no
-- entries yet.
SELECT grouped.type, grouped.field, grouped.message, grouped.count, grouped.other
  FROM import_job AS job
  LEFT JOIN LATERAL (
      SELECT type, field, message, other, sum(count)::bigint AS count
        FROM (SELECT type, field, message,
                     key = '00000000-0000-0000-0000-000000000000'::uuid AS other, count
                FROM import_job_error_group
               WHERE job_id = job.id
              UNION ALL
              SELECT item.value ->> 'type', item.value ->> 'field', item.value ->> 'message',
                     false, 1
                -- The column is read (and detoasted) once, only for a head;
                -- OFFSET 0: computed once, not inlined into each element's filter.
                FROM (SELECT jsonb_array_length(job.errors) - job.errors_head AS given
                      OFFSET 0) AS head,
                     jsonb_array_elements(CASE WHEN job.errors_head > 0 THEN job.errors END)
                         WITH ORDINALITY AS item (value, n)
               WHERE item.n > head.given) AS every
       GROUP BY type, field, message, other
       ORDER BY count DESC, other DESC, type NULLS FIRST, field NULLS FIRST,
                message NULLS FIRST
       LIMIT %(limit)s::bigint) AS grouped ON true
 WHERE job.id = %(id)s::uuid;
