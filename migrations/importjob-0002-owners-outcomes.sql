-- Who an import belongs to, the application's own fields, and what
-- happened to every row: owner, metadata, skipped_count and outcomes.
-- Safe on a live table: each column is added without a rewrite (no
-- default, or a constant one), each rule as NOT VALID so that adding it
-- reads no row; importjob-0003-owners-outcomes-indexes validates them and
-- builds the indexes without blocking writes.

SET LOCAL lock_timeout = '2s';
SET LOCAL statement_timeout = '60s';

ALTER TABLE import_job
    ADD COLUMN owner text,
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN skipped_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN outcomes jsonb NOT NULL DEFAULT '{}'::jsonb;

ALTER TABLE import_job
    ADD CONSTRAINT import_job_owner_check
        CHECK (char_length(owner) BETWEEN 1 AND 200 AND owner !~ '[[:cntrl:]]') NOT VALID;
ALTER TABLE import_job
    ADD CONSTRAINT import_job_metadata_check CHECK (jsonb_typeof(metadata) = 'object') NOT VALID;
ALTER TABLE import_job
    ADD CONSTRAINT import_job_skipped_count_check CHECK (skipped_count >= 0) NOT VALID;
ALTER TABLE import_job
    ADD CONSTRAINT import_job_outcomes_check CHECK (jsonb_typeof(outcomes) = 'object') NOT VALID;

-- A job's rows per outcome label plus a batch's: labels the job has add
-- up; a new label takes a place while the job has fewer than max_labels
-- labels of its own (in the order jsonb gives the batch's keys), and the
-- rows of any further one count under "other", so labels that embed a
-- row's value cannot grow the row without end. PL/pgSQL, so that its few
-- statements are planned once a session, not at every flush.
CREATE FUNCTION import_job_outcomes_add(outcomes jsonb, added jsonb, max_labels integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    own integer;  -- the job's own labels, counted once a new label asks
    label text;
    rows bigint;
BEGIN
    FOR label, rows IN SELECT key, value::bigint FROM jsonb_each_text(added) LOOP
        IF NOT outcomes ? label AND label <> 'other' THEN
            own := coalesce(own, (SELECT count(*) FROM jsonb_object_keys(outcomes) AS k
                                   WHERE k <> 'other'));
            IF own < max_labels THEN
                own := own + 1;
            ELSE
                label := 'other';
            END IF;
        END IF;
        outcomes := jsonb_set(outcomes, ARRAY[label],
                              to_jsonb(coalesce((outcomes ->> label)::bigint, 0) + rows));
    END LOOP;
    RETURN outcomes;
END
$$;
