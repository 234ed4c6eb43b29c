-- Check a job row with one function call instead of eleven CHECK
-- expressions. PostgreSQL reads a table's CHECK expressions back from their
-- stored text at every statement that writes the table (ExecRelCheck calls
-- stringToNode on each): the eleven of 0001 and 0002 took 45-65 us of every
-- write here (pgbench, one client), as much as the rest of a one-row
-- UPDATE. One CHECK calling a PL/pgSQL function takes 10-20 us: the
-- function's expression is planned once per session.
-- depends: importjob-0008-hot-flushes
--
-- The rules are those of the eleven constraints, unchanged; a refused row
-- raises check_violation under the name of the constraint whose rule it
-- breaks (import_job_<field>_check), as before, so importjob's translation
-- still names the field. 0010 validates this constraint and drops the old
-- ones; until then both hold.

SET LOCAL lock_timeout = '2s';

-- Catalog changes only: a new function. It takes the columns, not the
-- row: a whole-row reference would tie it to the table's row type, and
-- `CREATE TABLE ... (LIKE import_job INCLUDING ALL)` would refuse it.
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

-- NOT VALID: new and changed rows are checked from now on, the existing
-- ones by 0010, without holding this lock through a scan.
-- squawk-ignore require-statement-timeout
ALTER TABLE import_job
    ADD CONSTRAINT import_job_check CHECK (import_job_valid(
        status, source_type, filename, total_rows, processed_rows, success_count,
        error_count, errors_dropped, errors, started_at, completed_at)) NOT VALID;
