-- children: a chunked import's chunks, in order, with their progress.
-- Served by ix_import_job_parent (parent_id, chunk_index).
-- Returns no row for a job without chunks.
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes,
       parent_id, chunk, chunk_index, chunks, keep_going
  FROM import_job
 WHERE parent_id = %(id)s::uuid
 ORDER BY chunk_index;
