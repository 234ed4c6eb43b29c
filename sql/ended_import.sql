-- ended_import: the chunked import whose end came with its chunk's, when
-- that chunk's transaction ended it (the parent's ended_by): one worker,
-- the one that ended that chunk, is told. Summed as every read.
-- Returns the parent, or no row when another chunk's end ended it (or none yet).
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes,
       parent_id, chunk, chunk_index, chunks, keep_going
  FROM import_job_summed
 WHERE id = %(parent_id)s::uuid
   AND %(id)s::uuid = (SELECT ended_by FROM import_job WHERE id = %(parent_id)s::uuid);
