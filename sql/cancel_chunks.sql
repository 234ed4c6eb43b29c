-- cancel_chunks: cancel a chunked import's chunks not ended, in one
-- statement: each locked before its parent (import_job_chunk_moved then
-- takes the parent's lock), and the last of them ends the parent.
-- Changes no row for a job without chunks.
UPDATE import_job
   SET status = 'cancelled', completed_at = now(), updated_at = now()
 WHERE parent_id = %(id)s::uuid
   AND status IN ('pending', 'processing');
