-- Undo importjob-0014-drop-errors-from-row-check: the function and CHECK of
-- 0009 again (the function as 0009 made it, standing alone, since rolling
-- back 0013 drops the function of ten rules), the CHECK added NOT VALID (a
-- brief lock, no scan) and then validated in a transaction of its own,
-- without blocking writes.
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
    errors jsonb,
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
       AND jsonb_typeof(errors) = 'array'
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
        WHEN jsonb_typeof(errors) <> 'array' THEN 'errors'
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

ALTER TABLE import_job
    ADD CONSTRAINT import_job_check CHECK (import_job_valid(
        status, source_type, filename, total_rows, processed_rows, success_count,
        error_count, errors_dropped, errors, started_at, completed_at)) NOT VALID;

ALTER TABLE import_job VALIDATE CONSTRAINT import_job_check;
