-- purge_finished: delete ended jobs whose completed_at is older than
-- older_than ago, oldest first, with their error logs, in a batch bounded
-- twice: at most batch_size jobs are looked at, and at most batch_size log
-- entries deleted. A job is deleted once its log is empty (its last entries
-- deleted by this batch, in recording order); its groups (at most about a
-- thousand) go with it (ON DELETE CASCADE). Pending and processing jobs
-- have no completed_at (a CHECK guarantees it) and are never deleted. A
-- chunk goes only once its parent ended (its sums stand till then), and a
-- parent once its chunks are gone: a batch bounds their logs too.
-- Returns one row: the jobs deleted and the log entries deleted; the caller
-- repeats until a batch deletes neither.
WITH ended AS (
    SELECT id
      FROM import_job
     WHERE completed_at < now() - %(older_than)s::interval
       AND status IN ('completed', 'failed', 'cancelled')
       AND (parent_id IS NULL
            OR EXISTS (SELECT FROM import_job AS parent
                        WHERE parent.id = import_job.parent_id
                          AND parent.completed_at IS NOT NULL))
     ORDER BY completed_at
     LIMIT %(batch_size)s::bigint
       FOR UPDATE SKIP LOCKED
), entries AS (
    DELETE FROM import_job_error AS e
     USING (SELECT page.job_id, page.n
              FROM ended
              CROSS JOIN LATERAL (SELECT job_id, n
                                    FROM import_job_error
                                   WHERE job_id = ended.id
                                   ORDER BY n
                                   LIMIT %(batch_size)s::bigint) AS page
             LIMIT %(batch_size)s::bigint) AS doomed
     WHERE e.job_id = doomed.job_id AND e.n = doomed.n
    RETURNING e.job_id, e.n
), jobs AS (
    DELETE FROM import_job AS job
     USING ended
     WHERE job.id = ended.id
       -- Nothing left in the log past what this batch deleted.
       AND NOT EXISTS (
           SELECT FROM import_job_error AS kept
            WHERE kept.job_id = ended.id
              AND kept.n > coalesce((SELECT max(n) FROM entries WHERE job_id = ended.id), 0))
       AND NOT EXISTS (SELECT FROM import_job AS chunk WHERE chunk.parent_id = ended.id)
    RETURNING job.id
)
SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM entries);
