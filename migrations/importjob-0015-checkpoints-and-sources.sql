-- Resume and refuse: where a job's worker got to (checkpoint), the file it
-- reads (source_sha256, source_size), and whether that file may be imported
-- only once (unique_source, set by create(unique_source=True)).
-- depends: importjob-0014-drop-errors-from-row-check
--
-- New columns without a volatile default: a catalog change, no rewrite.
-- The rules on the fingerprint are checked by a trigger that runs only for
-- the statements writing those columns (an INSERT, never a flush), under
-- the names a CHECK would have, so importjob names the field. The checkpoint
-- is bounded by importjob before it is sent; the table does not re-check
-- its size on every flush that carries one.

SET LOCAL lock_timeout = '2s';

-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN checkpoint jsonb;
-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN source_sha256 text;
-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN source_size bigint;
-- A constant default: stored in the catalog, the table is not rewritten.
-- squawk-ignore require-statement-timeout
ALTER TABLE import_job ADD COLUMN unique_source boolean NOT NULL DEFAULT false;

-- squawk-ignore require-statement-timeout
CREATE FUNCTION import_job_source_refused() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rule text := CASE WHEN NEW.source_sha256 !~ '^[0-9a-f]{64}$' THEN 'source_sha256'
                      ELSE 'source_size' END;
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        MESSAGE = format('new row for relation "import_job" violates check constraint "%s"',
                         'import_job_' || rule || '_check'),
        CONSTRAINT = 'import_job_' || rule || '_check',
        COLUMN = rule,
        TABLE = 'import_job';
END
$$;

-- Runs only for a row that breaks a rule: the WHEN is the check (NULL, no
-- fingerprint, passes, as a CHECK would).
-- squawk-ignore require-statement-timeout
CREATE TRIGGER import_job_source_check
    BEFORE INSERT OR UPDATE OF source_sha256, source_size ON import_job
    FOR EACH ROW WHEN (NEW.source_sha256 !~ '^[0-9a-f]{64}$' OR NEW.source_size < 0)
    EXECUTE FUNCTION import_job_source_refused();
