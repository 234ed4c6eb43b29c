-- Undo importjob-0017-rules-where-written: the CHECK of 0013 and its
-- function again, the errors and fingerprint triggers checking INSERTs
-- again, the two triggers of 0017 and their function gone. The CHECK is
-- added NOT VALID (a brief lock, no scan) and then validated in a
-- transaction of its own, without blocking writes, as 0014 did.
-- transactional: false

CREATE FUNCTION import_job_valid(
    status text,
    source_type text,
    filename text,
    total_rows bigint,
    processed_rows bigint,
    success_count bigint,
    error_count bigint,
    errors_dropped bigint,
    started_at timestamptz,
    completed_at timestamptz
) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    rule text;
BEGIN
    -- Every rule in one expression: the path of every write.
    IF status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')
       AND source_type IN ('csv', 'json', 'text')
       AND char_length(filename) BETWEEN 1 AND 255
       AND least(total_rows, processed_rows, success_count,
                 error_count, errors_dropped) >= 0
       AND (status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL)
       AND (status <> 'processing' OR started_at IS NOT NULL)
    THEN
        RETURN true;
    END IF;
    -- Refused: name the first rule broken (NOT NULL holds before CHECK runs).
    rule := CASE
        WHEN status NOT IN ('pending', 'processing', 'completed', 'failed', 'cancelled')
            THEN 'status'
        WHEN source_type NOT IN ('csv', 'json', 'text') THEN 'source_type'
        WHEN char_length(filename) NOT BETWEEN 1 AND 255 THEN 'filename'
        WHEN total_rows < 0 THEN 'total_rows'
        WHEN processed_rows < 0 THEN 'processed_rows'
        WHEN success_count < 0 THEN 'success_count'
        WHEN error_count < 0 THEN 'error_count'
        WHEN errors_dropped < 0 THEN 'errors_dropped'
        WHEN (status IN ('completed', 'failed', 'cancelled')) <> (completed_at IS NOT NULL)
            THEN 'completed_at'
        ELSE 'started_at'
    END;
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        MESSAGE = format('new row for relation "import_job" violates check constraint "%s"',
                         'import_job_' || rule || '_check'),
        CONSTRAINT = 'import_job_' || rule || '_check',
        COLUMN = rule,
        TABLE = 'import_job';
END
$$;

CREATE OR REPLACE TRIGGER import_job_errors_check
    BEFORE INSERT OR UPDATE OF errors ON import_job
    FOR EACH ROW WHEN (jsonb_typeof(NEW.errors) <> 'array')
    EXECUTE FUNCTION import_job_errors_refused();

CREATE OR REPLACE TRIGGER import_job_source_check
    BEFORE INSERT OR UPDATE OF source_sha256, source_size ON import_job
    FOR EACH ROW WHEN (NEW.source_sha256 !~ '^[0-9a-f]{64}$' OR NEW.source_size < 0)
    EXECUTE FUNCTION import_job_source_refused();

ALTER TABLE import_job
    ADD CONSTRAINT import_job_row_check CHECK (import_job_valid(
        status, source_type, filename, total_rows, processed_rows, success_count,
        error_count, errors_dropped, started_at, completed_at)) NOT VALID;

DROP TRIGGER IF EXISTS import_job_counts_check ON import_job;
DROP TRIGGER IF EXISTS import_job_rules ON import_job;
DROP FUNCTION IF EXISTS import_job_rules();

ALTER TABLE import_job VALIDATE CONSTRAINT import_job_row_check;
