-- The schema importjob's pre-release migrations (importjob-0001-create-import-job
-- to importjob-0018-errors-head) built, as pg_dump printed it: the state
-- tests/integration/test_migrations.py brings to the 1.0 baseline.

-- Functions come before the tables they read, as pg_dump orders them.
SET check_function_bodies = false;

CREATE FUNCTION public.import_job_error_fit(errors jsonb, errors_head bigint, errors_recorded bigint, max_errors bigint, entries jsonb) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN jsonb_array_length(entries) = 0 THEN 0
                WHEN coalesce(errors_head = errors_recorded, true)
                THEN least(jsonb_array_length(entries),
                           greatest(0, max_errors - jsonb_array_length(errors)))
                ELSE 0 END
$$;

CREATE FUNCTION public.import_job_error_key(type text, field text, message text) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT md5(coalesce(length(type)::text || ':' || type, '') || ','
               || coalesce(length(field)::text || ':' || field, '') || ','
               || coalesce(length(message)::text || ':' || message, ''))::uuid
$$;

CREATE FUNCTION public.import_job_error_reasons(job_id uuid, entries jsonb) RETURNS TABLE(key uuid, type text, field text, message text, count bigint, known boolean, place bigint)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $_$
    SELECT key, type, field, message, count, known,
           CASE WHEN NOT known THEN row_number() OVER (PARTITION BY known ORDER BY first) END
      FROM (SELECT keyed.*,
                   coalesce((SELECT true FROM import_job_error_group AS g
                              WHERE g.job_id = $1 AND g.key = keyed.key), false) AS known
              FROM (SELECT grouped.*,
                           import_job_error_key(grouped.type, grouped.field,
                                                grouped.message) AS key
                      FROM (SELECT item.value ->> 'type' AS type,
                                   item.value ->> 'field' AS field,
                                   item.value ->> 'message' AS message,
                                   count(*) AS count, min(item.n) AS first
                              FROM jsonb_array_elements($2) WITH ORDINALITY AS item (value, n)
                             GROUP BY 1, 2, 3) AS grouped
                    OFFSET 0) AS keyed
            OFFSET 0) AS looked_up
$_$;

CREATE FUNCTION public.import_job_errors_refused() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.import_job_forget_errors() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM import_job_error AS e USING gone WHERE e.job_id = gone.id;
    DELETE FROM import_job_error_group AS g USING gone WHERE g.job_id = gone.id;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.import_job_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    job_id uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    PERFORM pg_notify('import_job_' || replace(job_id::text, '-', ''), job_id::text);
    RETURN NULL;
END
$$;

CREATE FUNCTION public.import_job_rules() RETURNS trigger
    LANGUAGE plpgsql
    AS $_$
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
$_$;

CREATE FUNCTION public.import_job_source_refused() RETURNS trigger
    LANGUAGE plpgsql
    AS $_$
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
$_$;

CREATE TABLE public.import_job (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    source_type text NOT NULL,
    filename text NOT NULL,
    total_rows bigint DEFAULT 0 NOT NULL,
    processed_rows bigint DEFAULT 0 NOT NULL,
    success_count bigint DEFAULT 0 NOT NULL,
    error_count bigint DEFAULT 0 NOT NULL,
    errors jsonb DEFAULT '[]'::jsonb NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp with time zone,
    worker_id text,
    errors_dropped bigint DEFAULT 0 NOT NULL,
    applied_batches jsonb DEFAULT '{}'::jsonb NOT NULL,
    watched_until timestamp with time zone,
    errors_logged bigint DEFAULT 0 NOT NULL,
    errors_recorded bigint DEFAULT 0 NOT NULL,
    error_groups bigint DEFAULT 0 NOT NULL,
    checkpoint jsonb,
    source_sha256 text,
    source_size bigint,
    unique_source boolean DEFAULT false NOT NULL,
    errors_head bigint DEFAULT 0
)
WITH (fillfactor='70');

COMMENT ON TABLE public.import_job IS 'One row per import of question-answer pairs (importjob).';

CREATE TABLE public.import_job_error (
    job_id uuid NOT NULL,
    n bigint NOT NULL,
    entry jsonb NOT NULL
);

CREATE TABLE public.import_job_error_group (
    job_id uuid NOT NULL,
    key uuid NOT NULL,
    type text,
    field text,
    message text,
    count bigint NOT NULL
);

ALTER TABLE ONLY public.import_job_error_group
    ADD CONSTRAINT import_job_error_group_pkey PRIMARY KEY (job_id, key);

ALTER TABLE ONLY public.import_job_error
    ADD CONSTRAINT import_job_error_pkey PRIMARY KEY (job_id, n);

ALTER TABLE ONLY public.import_job
    ADD CONSTRAINT import_job_pkey PRIMARY KEY (id);

CREATE UNIQUE INDEX import_job_source_once ON public.import_job USING btree (source_sha256) WHERE (unique_source AND (status = ANY (ARRAY['pending'::text, 'processing'::text, 'completed'::text])));

CREATE INDEX ix_import_job_completed_at ON public.import_job USING btree (completed_at) WHERE (completed_at IS NOT NULL);

CREATE INDEX ix_import_job_created_at ON public.import_job USING btree (created_at, id);

CREATE INDEX ix_import_job_source_sha256 ON public.import_job USING btree (source_sha256) WHERE (source_sha256 IS NOT NULL);

CREATE INDEX ix_import_job_status ON public.import_job USING btree (status, created_at, id);

CREATE TRIGGER import_job_counts_check BEFORE UPDATE OF total_rows, processed_rows, success_count, error_count, errors_dropped ON public.import_job FOR EACH ROW WHEN ((LEAST(new.total_rows, new.processed_rows, new.success_count, new.error_count, new.errors_dropped) < 0)) EXECUTE FUNCTION public.import_job_rules();

CREATE TRIGGER import_job_errors_check BEFORE UPDATE OF errors ON public.import_job FOR EACH ROW WHEN ((jsonb_typeof(new.errors) <> 'array'::text)) EXECUTE FUNCTION public.import_job_errors_refused();

CREATE TRIGGER import_job_forget_errors AFTER DELETE ON public.import_job REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION public.import_job_forget_errors();

CREATE TRIGGER import_job_notify AFTER DELETE OR UPDATE ON public.import_job FOR EACH ROW WHEN ((old.watched_until > now())) EXECUTE FUNCTION public.import_job_notify();

CREATE TRIGGER import_job_rules BEFORE INSERT OR UPDATE OF status, source_type, filename, started_at, completed_at ON public.import_job FOR EACH ROW EXECUTE FUNCTION public.import_job_rules();

CREATE TRIGGER import_job_source_check BEFORE UPDATE OF source_sha256, source_size ON public.import_job FOR EACH ROW WHEN (((new.source_sha256 !~ '^[0-9a-f]{64}$'::text) OR (new.source_size < 0))) EXECUTE FUNCTION public.import_job_source_refused();

