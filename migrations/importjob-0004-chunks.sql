-- Chunked imports: one parent job for a file, one child job (a chunk) per
-- piece that workers claim. Safe on a live table: the columns are added
-- without a rewrite, the rules and the reference as NOT VALID (reading no
-- row); importjob-0005-chunks-index validates them and builds the index of
-- a parent's chunks without blocking writes.

SET LOCAL lock_timeout = '2s';
SET LOCAL statement_timeout = '60s';

ALTER TABLE import_job
    ADD COLUMN parent_id uuid,
    ADD COLUMN chunk jsonb,
    ADD COLUMN chunk_index bigint,
    ADD COLUMN chunks bigint,
    ADD COLUMN keep_going boolean NOT NULL DEFAULT false,
    ADD COLUMN ended_by uuid;

ALTER TABLE import_job
    ADD CONSTRAINT import_job_parent_id_fkey FOREIGN KEY (parent_id)
        REFERENCES import_job (id) ON DELETE CASCADE NOT VALID;
ALTER TABLE import_job
    ADD CONSTRAINT import_job_chunk_index_check
        CHECK ((parent_id IS NULL) = (chunk_index IS NULL) AND chunk_index >= 0) NOT VALID;
ALTER TABLE import_job
    ADD CONSTRAINT import_job_chunks_check
        CHECK (chunks IS NULL OR (chunks > 0 AND parent_id IS NULL)) NOT VALID;

-- A watched chunk's change notifies its parent's watchers too (watch marks
-- a parent's chunks with it).
CREATE OR REPLACE FUNCTION import_job_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    job import_job := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    PERFORM pg_notify('import_job_' || replace(job.id::text, '-', ''), job.id::text);
    IF job.parent_id IS NOT NULL THEN
        -- A chunk's change is its chunked import's too.
        PERFORM pg_notify('import_job_' || replace(job.parent_id::text, '-', ''),
                          job.parent_id::text);
    END IF;
    RETURN NULL;
END
$$;

-- A chunk's status moved: its parent follows, under the parent's row lock,
-- so that of the transactions ending chunks exactly one ends the parent.
-- The lock is taken after the chunk's (every writer goes chunk, then
-- parent), and only when a chunk starts or ends: a flush never waits on it.
-- The parent becomes processing when a chunk starts; failed as soon as a
-- chunk fails (unless keep_going), its chunks not started cancelled then
-- (a running one goes on to its own end); otherwise it ends with its last
-- chunk: failed if one failed,
-- cancelled if one was, completed if all completed. ended_by keeps the
-- chunk whose transaction ended it, so that one worker is told.
CREATE FUNCTION import_job_chunk_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    parent record;
    ends_as text;
BEGIN
    SELECT status, keep_going INTO parent
      FROM import_job WHERE id = NEW.parent_id FOR NO KEY UPDATE;
    IF parent.status IN ('completed', 'failed', 'cancelled') THEN
        RETURN NULL;
    END IF;
    IF NEW.status = 'processing' THEN
        UPDATE import_job SET status = 'processing', started_at = now(), updated_at = now()
         WHERE id = NEW.parent_id AND status = 'pending';
        RETURN NULL;
    ELSIF NEW.status = 'pending' THEN
        RETURN NULL;  -- requeued: still to be done
    ELSIF NEW.status = 'failed' AND NOT parent.keep_going THEN
        ends_as := 'failed';
    ELSIF EXISTS (SELECT FROM import_job
                   WHERE parent_id = NEW.parent_id AND status IN ('pending', 'processing')) THEN
        RETURN NULL;  -- not the last chunk
    ELSE
        SELECT CASE WHEN bool_or(status = 'failed') THEN 'failed'
                    WHEN bool_or(status = 'cancelled') THEN 'cancelled'
                    ELSE 'completed' END
          INTO ends_as
          FROM import_job WHERE parent_id = NEW.parent_id;
    END IF;
    UPDATE import_job
       SET status = ends_as, completed_at = now(), ended_by = NEW.id, updated_at = now()
     WHERE id = NEW.parent_id;
    -- Failed early: the chunks not started are cancelled now (SKIP LOCKED:
    -- waiting on a chunk while holding its parent could deadlock).
    UPDATE import_job SET status = 'cancelled', completed_at = now(), updated_at = now()
     WHERE id IN (SELECT id FROM import_job
                   WHERE parent_id = NEW.parent_id AND status = 'pending'
                     FOR NO KEY UPDATE SKIP LOCKED);
    RETURN NULL;
END
$$;

CREATE TRIGGER import_job_chunk_moved
    AFTER UPDATE OF status ON import_job
    FOR EACH ROW
    WHEN (NEW.parent_id IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION import_job_chunk_moved();

-- Every job as its readers see it: a parent with the sums of its chunks'
-- counts and outcomes, read when asked (a chunk's flush writes its own row
-- only), every other job as stored. The reads of sql/ select from it.
CREATE VIEW import_job_summed AS
SELECT job.id, job.status, job.source_type, job.filename,
       coalesce(sums.total_rows, job.total_rows) AS total_rows,
       coalesce(sums.processed_rows, job.processed_rows) AS processed_rows,
       coalesce(sums.success_count, job.success_count) AS success_count,
       coalesce(sums.error_count, job.error_count) AS error_count,
       job.errors, job.started_at, job.completed_at, job.created_at, job.updated_at,
       job.heartbeat_at, job.worker_id,
       coalesce(sums.errors_dropped, job.errors_dropped) AS errors_dropped,
       coalesce(sums.errors_logged, job.errors_logged) AS errors_logged,
       job.checkpoint, job.source_sha256, job.source_size,
       job.owner, job.metadata,
       coalesce(sums.skipped_count, job.skipped_count) AS skipped_count,
       coalesce(sums.outcomes, job.outcomes) AS outcomes,
       job.parent_id, job.chunk, job.chunk_index, job.chunks, job.keep_going
  FROM import_job AS job
  LEFT JOIN LATERAL (
      SELECT sum(chunk.total_rows)::bigint AS total_rows,
             sum(chunk.processed_rows)::bigint AS processed_rows,
             sum(chunk.success_count)::bigint AS success_count,
             sum(chunk.error_count)::bigint AS error_count,
             sum(chunk.errors_dropped)::bigint AS errors_dropped,
             sum(chunk.errors_logged)::bigint AS errors_logged,
             sum(chunk.skipped_count)::bigint AS skipped_count,
             -- NULL when no chunk has an outcome: the parent's own ({}) then.
             CASE WHEN job.chunks IS NOT NULL THEN
                 (SELECT jsonb_object_agg(label, rows)
                    FROM (SELECT outcome.key AS label, sum(outcome.value::bigint) AS rows
                            FROM import_job AS counted,
                                 jsonb_each_text(counted.outcomes) AS outcome
                           WHERE counted.parent_id = job.id
                           GROUP BY outcome.key) AS labelled)
             END AS outcomes
        FROM import_job AS chunk
       -- Only a parent has chunks to sum: for any other job nothing is read.
       WHERE chunk.parent_id = job.id AND job.chunks IS NOT NULL
  ) AS sums ON true;
