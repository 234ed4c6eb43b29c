-- The counts of the ended jobs, kept as they end, so that job_metrics (and
-- the web server's /metrics) reads a few rows where it scanned the table:
-- the ended jobs are nearly all of it, and only grow. An end appends its
-- change to import_job_ended_change, which takes no lock any other write
-- waits on; job_metrics folds the changes into import_job_ended_count, one
-- row per ended status, and returns them with the live jobs it still sums
-- through ix_import_job_status.
-- Safe on a live table: the triggers are created first, which takes the
-- table's SHARE ROW EXCLUSIVE lock (writes wait to the commit, for the
-- scan of the ended jobs below; reads go on), so that no job ends between
-- the counts computed here and the triggers that keep them.

SET LOCAL lock_timeout = '2s';
SET LOCAL statement_timeout = '10min';

CREATE TABLE import_job_ended_count (
    status         text    NOT NULL,
    jobs           bigint  NOT NULL,
    processed_rows numeric NOT NULL,
    failed_rows    numeric NOT NULL,
    skipped_rows   numeric NOT NULL,
    CONSTRAINT import_job_ended_count_pkey PRIMARY KEY (status)
);

-- What ended, or changed once ended, since job_metrics last folded: a job
-- counted in (jobs 1) or out (jobs -1) of its status, with its rows. A
-- parent's rows are its chunks', counted on them: it counts as a job only.
CREATE TABLE import_job_ended_change (
    status         text   NOT NULL,
    jobs           bigint NOT NULL,
    processed_rows bigint NOT NULL,
    failed_rows    bigint NOT NULL,
    skipped_rows   bigint NOT NULL
);

CREATE FUNCTION import_job_count_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM import_job_ended_change;
        DELETE FROM import_job_ended_count;
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' AND OLD.status IN ('completed', 'failed', 'cancelled') THEN
        INSERT INTO import_job_ended_change
        VALUES (OLD.status, -1,
                CASE WHEN OLD.chunks IS NULL THEN -OLD.processed_rows ELSE 0 END,
                CASE WHEN OLD.chunks IS NULL THEN -OLD.error_count ELSE 0 END,
                CASE WHEN OLD.chunks IS NULL THEN -OLD.skipped_count ELSE 0 END);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status IN ('completed', 'failed', 'cancelled') THEN
        INSERT INTO import_job_ended_change
        VALUES (NEW.status, 1,
                CASE WHEN NEW.chunks IS NULL THEN NEW.processed_rows ELSE 0 END,
                CASE WHEN NEW.chunks IS NULL THEN NEW.error_count ELSE 0 END,
                CASE WHEN NEW.chunks IS NULL THEN NEW.skipped_count ELSE 0 END);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER import_job_ended_inserted
    AFTER INSERT ON import_job
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'cancelled'))
    EXECUTE FUNCTION import_job_count_ended();

-- An end, or a late write to the rows of an ended job (a flush that lost
-- the race with a cancel): a flush of a live job fails the condition, and
-- runs nothing.
CREATE TRIGGER import_job_ended_updated
    AFTER UPDATE ON import_job
    FOR EACH ROW
    WHEN ((OLD.status IN ('completed', 'failed', 'cancelled')
           OR NEW.status IN ('completed', 'failed', 'cancelled'))
          AND (OLD.status <> NEW.status
               OR (NEW.chunks IS NULL
                   AND (OLD.processed_rows, OLD.error_count, OLD.skipped_count)
                       IS DISTINCT FROM (NEW.processed_rows, NEW.error_count, NEW.skipped_count))))
    EXECUTE FUNCTION import_job_count_ended();

CREATE TRIGGER import_job_ended_deleted
    AFTER DELETE ON import_job
    FOR EACH ROW
    WHEN (OLD.status IN ('completed', 'failed', 'cancelled'))
    EXECUTE FUNCTION import_job_count_ended();

CREATE TRIGGER import_job_truncated
    AFTER TRUNCATE ON import_job
    FOR EACH STATEMENT
    EXECUTE FUNCTION import_job_count_ended();

INSERT INTO import_job_ended_count (status, jobs, processed_rows, failed_rows, skipped_rows)
SELECT ended.status, count(job.id),
       coalesce(sum(job.processed_rows) FILTER (WHERE job.chunks IS NULL), 0),
       coalesce(sum(job.error_count) FILTER (WHERE job.chunks IS NULL), 0),
       coalesce(sum(job.skipped_count) FILTER (WHERE job.chunks IS NULL), 0)
  FROM (VALUES ('cancelled'), ('completed'), ('failed')) AS ended (status)
  LEFT JOIN import_job AS job ON job.status = ended.status
 GROUP BY ended.status;
