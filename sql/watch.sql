-- watch: mark a job watched until ttl from now, so that its changes notify
-- (the trigger import_job_notify), and read it. A watcher runs it when it
-- starts and again before the mark lapses. It locks the row, so it waits
-- for a writer that changed the job before the mark and returns that
-- change; every writer after it sees the mark.
-- Returns the job without its error entries (an empty errors array: a
-- snapshot shows progress, and the entries may be many), or no row when no
-- job has this id.
UPDATE import_job
   SET watched_until = greatest(watched_until, now() + %(ttl)s::interval)
 WHERE id = %(id)s::uuid
RETURNING id, status, source_type, filename, total_rows, processed_rows, success_count,
          error_count, '[]'::jsonb AS errors, started_at, completed_at, created_at, updated_at,
          heartbeat_at, worker_id, errors_dropped, errors_logged,
          checkpoint, source_sha256, source_size,
          owner, metadata, skipped_count, outcomes;
