-- Check the errors column only in the statements that write it. The CHECK
-- of 0009 passed errors to its function, and PL/pgSQL fetches a TOASTed
-- argument on entry: every write to a job holding many entries read them
-- all back (a flush of counts into a job holding 1,000 entries: +12 to
-- 43 us here), though most writes (a flush without entries, a status
-- change) never touch the column.
-- depends: importjob-0012-backfill-error-log
--
-- The rule is the same: errors is a JSON array. A BEFORE trigger on INSERT
-- and on UPDATE OF errors checks it, and refuses a row under the same name
-- as before (import_job_errors_check), so importjob still names the field.
-- The other ten rules move to a CHECK of their own, added NOT VALID here and
-- validated by 0014, which drops the CHECK of 0009; until then both hold.

SET LOCAL lock_timeout = '2s';

-- Catalog changes only: new functions.
-- squawk-ignore require-statement-timeout
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

-- squawk-ignore require-statement-timeout
CREATE FUNCTION import_job_errors_refused() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        MESSAGE = 'new row for relation "import_job" violates check constraint '
                  '"import_job_errors_check"',
        CONSTRAINT = 'import_job_errors_check',
        COLUMN = 'errors',
        TABLE = 'import_job';
END
$$;

-- Runs only for a row whose errors is not an array: the WHEN is the check.
-- squawk-ignore require-statement-timeout
CREATE TRIGGER import_job_errors_check
    BEFORE INSERT OR UPDATE OF errors ON import_job
    FOR EACH ROW WHEN (jsonb_typeof(NEW.errors) <> 'array')
    EXECUTE FUNCTION import_job_errors_refused();

-- NOT VALID: new and changed rows are checked from now on, the existing
-- ones by 0014, without holding this lock through a scan.
-- squawk-ignore require-statement-timeout
ALTER TABLE import_job
    ADD CONSTRAINT import_job_row_check CHECK (import_job_valid(
        status, source_type, filename, total_rows, processed_rows, success_count,
        error_count, errors_dropped, started_at, completed_at)) NOT VALID;
