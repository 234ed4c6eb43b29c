-- list_recent: the newest jobs, newest first: of one status, of one owner,
-- whose metadata contains the given fields (jsonb @>), and whose file name
-- contains the given text in any case, each filter when given (NULL: none). Run unprepared, so that each call is planned
-- for its filters, the NULL ones folded away: served backwards by
-- ix_import_job_created_at, or ix_import_job_status with a status,
-- ix_import_job_owner with an owner, ix_import_job_owner_status with both;
-- metadata through ix_import_job_metadata (GIN) when few jobs hold it. The
-- file name has no index of its own: it is checked on the jobs the other
-- filters' index yields, newest first, until the limit is met. The
-- errors array only with with_errors: otherwise an empty one, and the
-- stored value (up to max_errors entries, usually TOASTed) is not read.
SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count,
       CASE WHEN %(with_errors)s::boolean THEN errors ELSE '[]'::jsonb END AS errors,
       started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes,
       parent_id, chunk, chunk_index, chunks, keep_going
  FROM import_job_summed
 WHERE parent_id IS NULL  -- one row an import: its chunks are read by children
   AND (%(status)s::text IS NULL OR status = %(status)s::text)
   AND (%(owner)s::text IS NULL OR owner = %(owner)s::text)
   AND (%(metadata)s::jsonb IS NULL OR metadata @> %(metadata)s::jsonb)
   AND (%(filename)s::text IS NULL OR strpos(lower(filename), lower(%(filename)s::text)) > 0)
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s::bigint;
