-- Create the import_job table: one row per import, its lifecycle status,
-- its counters, its structured errors and its timestamps.
--
-- The CHECK constraints mirror importjob.models.ImportJob; their names are
-- what importjob.exceptions.InvalidFieldError reports as the field.

CREATE TABLE import_job (
    id             uuid        NOT NULL DEFAULT gen_random_uuid(),
    status         text        NOT NULL DEFAULT 'pending',
    source_type    text        NOT NULL,
    filename       text        NOT NULL,
    total_rows     bigint      NOT NULL DEFAULT 0,
    processed_rows bigint      NOT NULL DEFAULT 0,
    success_count  bigint      NOT NULL DEFAULT 0,
    error_count    bigint      NOT NULL DEFAULT 0,
    errors         jsonb       NOT NULL DEFAULT '[]'::jsonb,
    started_at     timestamptz,
    completed_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT import_job_pkey PRIMARY KEY (id),
    CONSTRAINT import_job_status_check
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    CONSTRAINT import_job_source_type_check
        CHECK (source_type IN ('csv', 'json', 'text')),
    CONSTRAINT import_job_filename_check
        CHECK (char_length(filename) BETWEEN 1 AND 255),
    CONSTRAINT import_job_total_rows_check CHECK (total_rows >= 0),
    CONSTRAINT import_job_processed_rows_check CHECK (processed_rows >= 0),
    CONSTRAINT import_job_success_count_check CHECK (success_count >= 0),
    CONSTRAINT import_job_error_count_check CHECK (error_count >= 0),
    CONSTRAINT import_job_errors_check CHECK (jsonb_typeof(errors) = 'array'),
    -- A terminal job has ended, and only a terminal job has.
    CONSTRAINT import_job_completed_at_check
        CHECK ((status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL)),
    CONSTRAINT import_job_started_at_check
        CHECK (status <> 'processing' OR started_at IS NOT NULL)
);

-- The table was created above, in this transaction: no other session can see
-- it, so nothing can hold or wait for a lock on it.
-- squawk-ignore require-lock-timeout, require-statement-timeout
COMMENT ON TABLE import_job IS 'One row per import of question-answer pairs (importjob).';

-- Serves list_by_status: WHERE status = $1 ORDER BY created_at, id LIMIT $2.
CREATE INDEX ix_import_job_status ON import_job (status, created_at, id);
