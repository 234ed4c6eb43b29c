-- purge_finished: delete at most batch_size ended jobs whose completed_at is
-- older than older_than ago, oldest first. Pending and processing jobs have
-- no completed_at (a CHECK guarantees it) and are never deleted.
-- Returns no row; the caller reads the row count and repeats until a batch
-- comes back short.
DELETE FROM import_job
 WHERE id IN (
    SELECT id
      FROM import_job
     WHERE completed_at < now() - %(older_than)s::interval
       AND status IN ('completed', 'failed', 'cancelled')
     ORDER BY completed_at
     LIMIT %(batch_size)s::bigint
       FOR UPDATE SKIP LOCKED);
