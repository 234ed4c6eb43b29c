-- A chunked import's sums kept on its parent: the parent row holds the
-- counts and outcomes of its chunks that are not processing, moved there by
-- import_job_chunk_moved when a chunk's status moves (under the parent's
-- row lock, which it takes then anyway) or when a chunk that is not
-- processing is written (rare: a requeued chunk's update_progress). A read
-- then adds only the processing chunks, about one per worker, where it
-- summed every chunk: a parent of many chunks reads about as fast as one
-- job. A processing chunk's flush still writes its own row only.
-- Safe on a live table: the trigger is replaced first, which takes the
-- table's SHARE ROW EXCLUSIVE lock (writes wait, for the few milliseconds
-- to the commit; reads go on), so no chunk moves between the new rule and
-- the parents' sums that the same transaction computes under it.
-- importjob-0007-chunk-sums-index builds the index of processing chunks.

SET LOCAL lock_timeout = '2s';
SET LOCAL statement_timeout = '60s';

DROP TRIGGER import_job_chunk_moved ON import_job;

-- Cancel the chunks not ended of a chunked import that failed, each after
-- its parent's lock, which the caller holds (import_job_chunk_moved). A
-- chunk in the middle of a flush is waited for: a flush never waits on the
-- parent, so it ends in a moment, and its worker stops at its next flush.
-- One in the middle of its own change of status waits for the parent's
-- lock, so waiting for it would never end: past lock_timeout (short of
-- deadlock_timeout's 1 s, so that this end gives up first) it is left to
-- that change, which sees the import ended once it runs.
CREATE FUNCTION import_job_chunks_stop(failed_id uuid) RETURNS void
LANGUAGE plpgsql SET lock_timeout = '500ms' AS $$
DECLARE
    chunk_id uuid;
BEGIN
    FOR chunk_id IN SELECT id FROM import_job
                     WHERE parent_id = failed_id AND status IN ('pending', 'processing') LOOP
        BEGIN
            UPDATE import_job SET status = 'cancelled', completed_at = now(), updated_at = now()
             WHERE id = chunk_id AND status IN ('pending', 'processing');
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- A chunk changed: its parent's sums take what changed of the chunk's
-- counts outside processing (a processing chunk is summed when read), and
-- when its status moved the parent follows, under the parent's row lock so
-- that of the transactions ending chunks exactly one ends the parent. The
-- lock is taken after the chunk's (every writer goes chunk, then parent).
-- The parent becomes processing when a chunk starts; failed as soon as a
-- chunk fails (unless keep_going), its chunks not ended cancelled then
-- (a running one's worker stops at its next flush); otherwise it ends
-- with its last chunk: failed if one failed, cancelled if one was,
-- completed if all completed. ended_by keeps the chunk whose transaction
-- ended it, so that one worker is told.
CREATE OR REPLACE FUNCTION import_job_chunk_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    parent record;
    ends_as text;
    -- What the parent holds of this chunk, before and after: its counts
    -- unless it is processing.
    was import_job := CASE WHEN OLD.status = 'processing' THEN NULL ELSE OLD END;
    now_is import_job := CASE WHEN NEW.status = 'processing' THEN NULL ELSE NEW END;
BEGIN
    SELECT status, keep_going INTO parent
      FROM import_job WHERE id = NEW.parent_id FOR NO KEY UPDATE;
    IF (was.total_rows, was.processed_rows, was.success_count, was.error_count,
        was.skipped_count, was.errors_logged, was.errors_dropped, was.outcomes)
       IS DISTINCT FROM
       (now_is.total_rows, now_is.processed_rows, now_is.success_count, now_is.error_count,
        now_is.skipped_count, now_is.errors_logged, now_is.errors_dropped, now_is.outcomes)
    THEN
        UPDATE import_job
           SET total_rows = total_rows + coalesce(now_is.total_rows, 0)
                                       - coalesce(was.total_rows, 0),
               processed_rows = processed_rows + coalesce(now_is.processed_rows, 0)
                                               - coalesce(was.processed_rows, 0),
               success_count = success_count + coalesce(now_is.success_count, 0)
                                             - coalesce(was.success_count, 0),
               error_count = error_count + coalesce(now_is.error_count, 0)
                                         - coalesce(was.error_count, 0),
               skipped_count = skipped_count + coalesce(now_is.skipped_count, 0)
                                             - coalesce(was.skipped_count, 0),
               errors_logged = errors_logged + coalesce(now_is.errors_logged, 0)
                                             - coalesce(was.errors_logged, 0),
               errors_dropped = errors_dropped + coalesce(now_is.errors_dropped, 0)
                                               - coalesce(was.errors_dropped, 0),
               -- Label by label; a label whose rows all left goes.
               outcomes = (SELECT coalesce(jsonb_object_agg(label, rows), '{}'::jsonb)
                             FROM (SELECT key AS label, sum(value) AS rows
                                     FROM (SELECT key, value::bigint AS value
                                             FROM jsonb_each_text(outcomes)
                                           UNION ALL
                                           SELECT key, value::bigint
                                             FROM jsonb_each_text(now_is.outcomes)
                                           UNION ALL
                                           SELECT key, -value::bigint
                                             FROM jsonb_each_text(was.outcomes)) AS moved
                                    GROUP BY key) AS summed
                            WHERE rows <> 0)
         WHERE id = NEW.parent_id;
    END IF;
    IF OLD.status = NEW.status THEN
        RETURN NULL;
    END IF;
    IF parent.status IN ('completed', 'failed', 'cancelled') THEN
        -- Started or requeued while its import ended (waiting on the lock
        -- of the parent that import_job_chunks_stop held): cancelled.
        IF NEW.status IN ('pending', 'processing') THEN
            UPDATE import_job SET status = 'cancelled', completed_at = now(), updated_at = now()
             WHERE id = NEW.id;
        END IF;
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
    IF ends_as = 'failed' THEN
        PERFORM import_job_chunks_stop(NEW.parent_id);  -- failed early: the rest stop
    END IF;
    RETURN NULL;
END
$$;

-- Every change of a chunk but a processing chunk's flush, the one write
-- that must not wait on its parent.
CREATE TRIGGER import_job_chunk_moved
    AFTER UPDATE ON import_job
    FOR EACH ROW
    WHEN (NEW.parent_id IS NOT NULL
          AND (OLD.status IS DISTINCT FROM NEW.status OR NEW.status <> 'processing'))
    EXECUTE FUNCTION import_job_chunk_moved();

-- The parents' sums as the trigger keeps them, from their chunks as they
-- are (every parent: one whose chunks all process holds none).
UPDATE import_job AS parent
   SET total_rows = held.total_rows, processed_rows = held.processed_rows,
       success_count = held.success_count, error_count = held.error_count,
       skipped_count = held.skipped_count, errors_logged = held.errors_logged,
       errors_dropped = held.errors_dropped, outcomes = held.outcomes
  FROM (SELECT chunk.parent_id,
               coalesce(sum(chunk.total_rows) FILTER (WHERE kept), 0) AS total_rows,
               coalesce(sum(chunk.processed_rows) FILTER (WHERE kept), 0) AS processed_rows,
               coalesce(sum(chunk.success_count) FILTER (WHERE kept), 0) AS success_count,
               coalesce(sum(chunk.error_count) FILTER (WHERE kept), 0) AS error_count,
               coalesce(sum(chunk.skipped_count) FILTER (WHERE kept), 0) AS skipped_count,
               coalesce(sum(chunk.errors_logged) FILTER (WHERE kept), 0) AS errors_logged,
               coalesce(sum(chunk.errors_dropped) FILTER (WHERE kept), 0) AS errors_dropped,
               coalesce((SELECT jsonb_object_agg(label, rows)
                           FROM (SELECT outcome.key AS label, sum(outcome.value::bigint) AS rows
                                   FROM import_job AS counted,
                                        jsonb_each_text(counted.outcomes) AS outcome
                                  WHERE counted.parent_id = chunk.parent_id
                                    AND counted.status <> 'processing'
                                  GROUP BY outcome.key) AS labelled), '{}'::jsonb) AS outcomes
          FROM (SELECT *, status <> 'processing' AS kept FROM import_job
                 WHERE parent_id IS NOT NULL) AS chunk
         GROUP BY chunk.parent_id) AS held
 WHERE parent.id = held.parent_id;

-- Every job as its readers see it: a parent with its own sums plus its
-- processing chunks' counts and outcomes, every other job as stored.
CREATE OR REPLACE VIEW import_job_summed AS
SELECT job.id, job.status, job.source_type, job.filename,
       job.total_rows + coalesce(live.total_rows, 0) AS total_rows,
       job.processed_rows + coalesce(live.processed_rows, 0) AS processed_rows,
       job.success_count + coalesce(live.success_count, 0) AS success_count,
       job.error_count + coalesce(live.error_count, 0) AS error_count,
       job.errors, job.started_at, job.completed_at, job.created_at, job.updated_at,
       job.heartbeat_at, job.worker_id,
       job.errors_dropped + coalesce(live.errors_dropped, 0) AS errors_dropped,
       job.errors_logged + coalesce(live.errors_logged, 0) AS errors_logged,
       job.checkpoint, job.source_sha256, job.source_size,
       job.owner, job.metadata,
       job.skipped_count + coalesce(live.skipped_count, 0) AS skipped_count,
       coalesce(live.outcomes, job.outcomes) AS outcomes,
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
             -- The parent's outcomes and its processing chunks', label by
             -- label (NULL when no chunk is processing: the parent's own).
             CASE WHEN count(*) > 0 THEN
                 (SELECT coalesce(jsonb_object_agg(label, rows), '{}'::jsonb)
                    FROM (SELECT outcome.key AS label, sum(outcome.value::bigint) AS rows
                            FROM (SELECT job.outcomes
                                  UNION ALL
                                  SELECT counted.outcomes FROM import_job AS counted
                                   WHERE counted.parent_id = job.id
                                     AND counted.status = 'processing') AS held,
                                 jsonb_each_text(held.outcomes) AS outcome
                           GROUP BY outcome.key) AS labelled)
             END AS outcomes
        FROM import_job AS chunk
       -- Only a parent has chunks to add: for any other job nothing is read.
       WHERE chunk.parent_id = job.id AND chunk.status = 'processing'
         AND job.chunks IS NOT NULL
  ) AS live ON true;
