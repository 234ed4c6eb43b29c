-- watch: mark a job watched until ttl from now, so that its changes notify
-- (the trigger import_job_notify), and read it. A watcher runs it when it
-- starts and again before the mark lapses. It locks the row, so it waits
-- for a writer that changed the job before the mark and returns that
-- change; every writer after it sees the mark. A chunked import's chunks
-- not ended are marked with it: their changes notify the parent's
-- watchers too, and it is returned with their sums (as they stood when
-- the statement began: a change after it notifies). The chunks are locked
-- first, in id order, and the parent after them: the order every writer
-- takes (a chunk's change of status locks its parent in its trigger), so a
-- mark and a worker's claim never each hold what the other waits for.
-- Returns the job without its error entries (an empty errors array: a
-- snapshot shows progress, and the entries may be many), or no row when no
-- job has this id.
WITH chunks AS (
    SELECT id FROM import_job
     WHERE parent_id = %(id)s::uuid AND status IN ('pending', 'processing')
     ORDER BY id
       FOR NO KEY UPDATE
), marked_chunks AS (
    UPDATE import_job
       SET watched_until = greatest(watched_until, now() + %(ttl)s::interval)
      FROM chunks
     WHERE import_job.id = chunks.id
    RETURNING import_job.id
), marked AS (
    -- Reading marked_chunks puts this update after the chunks': the parent
    -- is locked last.
    UPDATE import_job
       SET watched_until = greatest(watched_until, now() + %(ttl)s::interval)
     WHERE id = %(id)s::uuid
       AND (SELECT count(*) FROM marked_chunks) >= 0
    RETURNING id, status, source_type, filename, total_rows, processed_rows, success_count,
              error_count, started_at, completed_at, created_at, updated_at,
              heartbeat_at, worker_id, errors_dropped, errors_logged,
              checkpoint, source_sha256, source_size,
              owner, metadata, skipped_count, outcomes,
              parent_id, chunk, chunk_index, chunks, keep_going
)
SELECT marked.id, marked.status, marked.source_type, marked.filename,
       coalesce(summed.total_rows, marked.total_rows) AS total_rows,
       coalesce(summed.processed_rows, marked.processed_rows) AS processed_rows,
       coalesce(summed.success_count, marked.success_count) AS success_count,
       coalesce(summed.error_count, marked.error_count) AS error_count, '[]'::jsonb AS errors,
       marked.started_at, marked.completed_at, marked.created_at, marked.updated_at,
       marked.heartbeat_at, marked.worker_id,
       coalesce(summed.errors_dropped, marked.errors_dropped) AS errors_dropped,
       coalesce(summed.errors_logged, marked.errors_logged) AS errors_logged,
       marked.checkpoint, marked.source_sha256, marked.source_size,
       marked.owner, marked.metadata,
       coalesce(summed.skipped_count, marked.skipped_count) AS skipped_count,
       coalesce(summed.outcomes, marked.outcomes) AS outcomes,
       marked.parent_id, marked.chunk, marked.chunk_index, marked.chunks, marked.keep_going
  FROM marked
  LEFT JOIN import_job_summed AS summed ON summed.id = marked.id AND marked.chunks IS NOT NULL;
