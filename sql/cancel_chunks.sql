-- cancel_chunks: cancel a chunked import's chunks not ended, in one
-- statement: each locked before its parent, in id order as every writer
-- of several chunks takes them (import_job_chunk_moved then takes the
-- parent's lock), and the last of them ends the parent.
-- Changes no row for a job without chunks.
WITH chunks AS (
    SELECT id FROM import_job
     WHERE parent_id = %(id)s::uuid AND status IN ('pending', 'processing')
     ORDER BY id
       FOR NO KEY UPDATE
)
UPDATE import_job
   SET status = 'cancelled', completed_at = now(), updated_at = now()
  FROM chunks
 WHERE import_job.id = chunks.id;
