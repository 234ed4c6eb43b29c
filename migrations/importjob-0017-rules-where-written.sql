-- Check the row's rules only in the statements that write the columns they
-- read. The CHECK of 0013 ran on every write: PostgreSQL rebuilds a CHECK
-- from its stored text at each statement and calls its PL/pgSQL function,
-- 25 to 50 us of a flush that writes none of status, source_type, filename,
-- started_at or completed_at (measured in issue 10, on PostgreSQL 15).
-- depends: importjob-0016-index-sources
--
-- The rules and the names they are refused under stay the same
-- (import_job_<field>_check, with COLUMN set), so importjob still names the
-- field:
-- - import_job_rules: BEFORE INSERT and BEFORE UPDATE OF the lifecycle's
--   columns (a create, a claim, a status change, a rescue), every rule,
--   the errors and fingerprint rules too on an INSERT;
-- - import_job_counts_check: BEFORE UPDATE OF a counter, and only for a row
--   whose counter went negative (the WHEN is the check: a flush pays one
--   small comparison, no function call);
-- - the triggers of 0013 (errors) and 0015 (fingerprint) keep checking the
--   UPDATEs that write those columns; the INSERTs are import_job_rules'.
-- Catalog changes only: no scan, a brief lock, bounded by lock_timeout.
-- squawk-ignore-file ban-drop-constraint

SET LOCAL lock_timeout = '2s';

-- squawk-ignore require-statement-timeout
CREATE FUNCTION import_job_rules() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rule text;
BEGIN
    -- Every rule in one expression: a NULL fingerprint passes, as in 0015.
    IF NEW.status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')
       AND NEW.source_type IN ('csv', 'json', 'text')
       AND char_length(NEW.filename) BETWEEN 1 AND 255
       AND least(NEW.total_rows, NEW.processed_rows, NEW.success_count,
                 NEW.error_count, NEW.errors_dropped) >= 0
       AND (NEW.status IN ('completed', 'failed', 'cancelled')) = (NEW.completed_at IS NOT NULL)
       AND (NEW.status <> 'processing' OR NEW.started_at IS NOT NULL)
       AND jsonb_typeof(NEW.errors) = 'array'
       AND coalesce(NEW.source_sha256 ~ '^[0-9a-f]{64}$', true)
       AND coalesce(NEW.source_size >= 0, true)
    THEN
        RETURN NEW;
    END IF;
    -- Refused: name the first rule broken, in 0013's order.
    rule := CASE
        WHEN NEW.status NOT IN ('pending', 'processing', 'completed', 'failed', 'cancelled')
            THEN 'status'
        WHEN NEW.source_type NOT IN ('csv', 'json', 'text') THEN 'source_type'
        WHEN char_length(NEW.filename) NOT BETWEEN 1 AND 255 THEN 'filename'
        WHEN NEW.total_rows < 0 THEN 'total_rows'
        WHEN NEW.processed_rows < 0 THEN 'processed_rows'
        WHEN NEW.success_count < 0 THEN 'success_count'
        WHEN NEW.error_count < 0 THEN 'error_count'
        WHEN NEW.errors_dropped < 0 THEN 'errors_dropped'
        WHEN (NEW.status IN ('completed', 'failed', 'cancelled')) <> (NEW.completed_at IS NOT NULL)
            THEN 'completed_at'
        WHEN NEW.status = 'processing' AND NEW.started_at IS NULL THEN 'started_at'
        WHEN jsonb_typeof(NEW.errors) <> 'array' THEN 'errors'
        WHEN NEW.source_sha256 !~ '^[0-9a-f]{64}$' THEN 'source_sha256'
        ELSE 'source_size'
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
CREATE TRIGGER import_job_rules
    BEFORE INSERT OR UPDATE OF status, source_type, filename, started_at, completed_at
    ON import_job
    FOR EACH ROW EXECUTE FUNCTION import_job_rules();

-- squawk-ignore require-statement-timeout
CREATE TRIGGER import_job_counts_check
    BEFORE UPDATE OF total_rows, processed_rows, success_count, error_count, errors_dropped
    ON import_job
    FOR EACH ROW
    WHEN (least(NEW.total_rows, NEW.processed_rows, NEW.success_count,
                NEW.error_count, NEW.errors_dropped) < 0)
    EXECUTE FUNCTION import_job_rules();

-- The INSERTs are import_job_rules' now: these two keep the UPDATEs.
-- squawk-ignore require-statement-timeout
CREATE OR REPLACE TRIGGER import_job_errors_check
    BEFORE UPDATE OF errors ON import_job
    FOR EACH ROW WHEN (jsonb_typeof(NEW.errors) <> 'array')
    EXECUTE FUNCTION import_job_errors_refused();

-- squawk-ignore require-statement-timeout
CREATE OR REPLACE TRIGGER import_job_source_check
    BEFORE UPDATE OF source_sha256, source_size ON import_job
    FOR EACH ROW WHEN (NEW.source_sha256 !~ '^[0-9a-f]{64}$' OR NEW.source_size < 0)
    EXECUTE FUNCTION import_job_source_refused();

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job DROP CONSTRAINT import_job_row_check;

-- Only the CHECK dropped above called it.
-- squawk-ignore require-statement-timeout, ban-drop-function
DROP FUNCTION import_job_valid(
    text, text, text, bigint, bigint, bigint, bigint, bigint, timestamptz, timestamptz);
