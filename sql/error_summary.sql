-- error_summary: the largest groups of a job's error entries, by (type,
-- field, message), largest count first (ties: the other first, then in
-- text order, NULL first); other is true for the group that counts the
-- entries past the job's bound on groups. Reads the job's groups, never
-- its log. A chunked import's groups are its chunks' (and its own), summed
-- by reason: each chunk keeps its own bound, so the counts stay exact.
-- Returns no row when no job has this id; one row of NULLs when it has no
-- entries yet.
SELECT grouped.type, grouped.field, grouped.message, grouped.count, grouped.other
  FROM import_job AS job
  LEFT JOIN LATERAL (
      SELECT type, field, message, sum(count)::bigint AS count,
             key = '00000000-0000-0000-0000-000000000000'::uuid AS other
        FROM import_job_error_group
       -- The job, and a parent's chunks: an array, so the key's index serves it.
       WHERE job_id = ANY (ARRAY(SELECT counted.id FROM import_job AS counted
                                  WHERE counted.id = job.id OR counted.parent_id = job.id))
       GROUP BY key, type, field, message
       ORDER BY count DESC, other DESC, type NULLS FIRST, field NULLS FIRST,
                message NULLS FIRST
       LIMIT %(limit)s::bigint) AS grouped ON true
 WHERE job.id = %(id)s::uuid;
