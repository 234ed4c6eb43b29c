-- Back to importjob-0004's chunk rule and view: the parents' sums read
-- from every chunk, and the parents' own counts zero again, as there.
SET LOCAL lock_timeout = '2s';

DROP TRIGGER import_job_chunk_moved ON import_job;

CREATE OR REPLACE FUNCTION import_job_chunk_moved() RETURNS trigger
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
    UPDATE import_job SET status = 'cancelled', completed_at = now(), updated_at = now()
     WHERE id IN (SELECT id FROM import_job
                   WHERE parent_id = NEW.parent_id AND status = 'pending'
                     FOR NO KEY UPDATE SKIP LOCKED);
    RETURN NULL;
END
$$;

DROP FUNCTION import_job_chunks_stop(uuid);

CREATE TRIGGER import_job_chunk_moved
    AFTER UPDATE OF status ON import_job
    FOR EACH ROW
    WHEN (NEW.parent_id IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION import_job_chunk_moved();

UPDATE import_job AS parent
   SET total_rows = held.total_rows, processed_rows = 0, success_count = 0,
       error_count = 0, skipped_count = 0, errors_logged = 0, errors_dropped = 0,
       outcomes = '{}'::jsonb
  FROM (SELECT parent_id, sum(total_rows) AS total_rows FROM import_job
         WHERE parent_id IS NOT NULL GROUP BY parent_id) AS held
 WHERE parent.id = held.parent_id;

CREATE OR REPLACE VIEW import_job_summed AS
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
             CASE WHEN job.chunks IS NOT NULL THEN
                 (SELECT jsonb_object_agg(label, rows)
                    FROM (SELECT outcome.key AS label, sum(outcome.value::bigint) AS rows
                            FROM import_job AS counted,
                                 jsonb_each_text(counted.outcomes) AS outcome
                           WHERE counted.parent_id = job.id
                           GROUP BY outcome.key) AS labelled)
             END AS outcomes
        FROM import_job AS chunk
       WHERE chunk.parent_id = job.id AND job.chunks IS NOT NULL
  ) AS sums ON true;
