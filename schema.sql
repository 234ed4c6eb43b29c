-- The whole importjob schema, as the migrations leave it: read this file
-- first. A fresh database gets it from the migrations (`yoyo apply`,
-- `importjob migrate`); tests/integration/test_migrations.py builds one
-- database from this file and one from migrations/ and holds their catalogs
-- equal, so a migration that changes the schema changes this file with it.
--
-- Five tables. import_job holds one row per import: its owner and the
-- application's fields, its lifecycle status,
-- its counters, the seed's `errors` array, its times, its worker and where
-- it got to. import_job_error holds every error entry a job records, one
-- row each, numbered in recording order. import_job_error_group counts a
-- job's entries by reason, so that error_summary is exact at any size.
-- import_job_ended_count and import_job_ended_change count the ended jobs
-- by status as they end, so that job_metrics reads no ended job.
--
-- A chunked import is a parent row and one row per chunk (parent_id): the
-- parent's row keeps the sums of its chunks that are not processing, the
-- view import_job_summed adds the processing ones, and the trigger
-- import_job_chunk_moved keeps those sums and moves the parent's status
-- with its chunks'.
--
-- Every rule a row must keep is a CHECK constraint named
-- import_job_<column>_check: importjob.exceptions.InvalidFieldError names
-- that column when the database refuses a row.

-- gen_random_uuid() is core from PostgreSQL 13 on.

CREATE TABLE import_job (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    status          text        NOT NULL DEFAULT 'pending',
    source_type     text        NOT NULL,
    filename        text        NOT NULL,
    -- The seed's counters. Workers add to them in SQL (advance), never by
    -- reading and writing back, so any number of them can share a job.
    total_rows      bigint      NOT NULL DEFAULT 0,
    processed_rows  bigint      NOT NULL DEFAULT 0,
    success_count   bigint      NOT NULL DEFAULT 0,
    error_count     bigint      NOT NULL DEFAULT 0,
    -- The seed's structured errors: the entries given at create, then the
    -- recorded ones while they fit under the repository's max_errors.
    errors          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    -- Every entry recorded takes the next number: errors_recorded counts
    -- them, import_job_error keeps them up to the repository's
    -- error_log_limit (errors_logged counts those rows). errors_dropped
    -- counts the recorded entries the errors array did not take: once one
    -- did not fit, no later one goes there, so the array holds the log's
    -- first entries. error_groups counts the places handed out to reasons
    -- (import_job_error_group), max_groups of them with a group of their own.
    errors_recorded bigint      NOT NULL DEFAULT 0,
    errors_logged   bigint      NOT NULL DEFAULT 0,
    errors_dropped  bigint      NOT NULL DEFAULT 0,
    error_groups    bigint      NOT NULL DEFAULT 0,
    started_at      timestamptz,
    completed_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- The worker running the job, and when it last showed life: a job whose
    -- heartbeat is old has lost its worker (rescue_stale).
    heartbeat_at    timestamptz,
    worker_id       text,
    -- The last batch number applied per writer's key, so a batch sent again
    -- after its reply was lost changes nothing.
    applied_batches jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Until when someone watches the job: only then do its changes notify.
    watched_until   timestamptz,
    -- Where the workers got to in the file, stored with the counts before it.
    checkpoint      jsonb,
    -- The file's fingerprint; unique_source: created to import it once.
    source_sha256   text,
    source_size     bigint,
    unique_source   boolean     NOT NULL DEFAULT false,
    -- Who the import belongs to (a tenant, a user), or NULL: lists filter
    -- by it, and a file is imported once per owner.
    owner           text,
    -- The application's own fields: a JSON object (lists filter by containment).
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Rows deliberately not imported (a duplicate), apart from the failed.
    skipped_count   bigint      NOT NULL DEFAULT 0,
    -- Rows per outcome label of the application's ("created", "duplicate"),
    -- imported and skipped alike (import_job_outcomes_add).
    outcomes        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- A chunked import: a parent (chunks: how many; keep_going: whether a
    -- failed chunk lets the others go on; ended_by: the chunk whose end
    -- ended it) and one child job per chunk (parent_id, chunk_index, and
    -- chunk, the application's description of the piece).
    parent_id       uuid,
    chunk           jsonb,
    chunk_index     bigint,
    chunks          bigint,
    keep_going      boolean     NOT NULL DEFAULT false,
    ended_by        uuid,
    -- The round of claims a pending job waits in: claims go round the
    -- owners (import_job_claim_round).
    claim_round     bigint,
    CONSTRAINT import_job_pkey PRIMARY KEY (id),
    CONSTRAINT import_job_status_check
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    CONSTRAINT import_job_source_type_check CHECK (source_type IN ('csv', 'json', 'text')),
    CONSTRAINT import_job_filename_check CHECK (char_length(filename) BETWEEN 1 AND 255),
    CONSTRAINT import_job_total_rows_check CHECK (total_rows >= 0),
    CONSTRAINT import_job_processed_rows_check CHECK (processed_rows >= 0),
    CONSTRAINT import_job_success_count_check CHECK (success_count >= 0),
    CONSTRAINT import_job_error_count_check CHECK (error_count >= 0),
    CONSTRAINT import_job_errors_check CHECK (jsonb_typeof(errors) = 'array'),
    CONSTRAINT import_job_errors_dropped_check CHECK (errors_dropped >= 0),
    -- An ended job has its end time, and only an ended one.
    CONSTRAINT import_job_completed_at_check
        CHECK ((status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL)),
    CONSTRAINT import_job_started_at_check
        CHECK (status <> 'processing' OR started_at IS NOT NULL),
    CONSTRAINT import_job_source_sha256_check CHECK (source_sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT import_job_source_size_check CHECK (source_size >= 0),
    CONSTRAINT import_job_owner_check
        CHECK (char_length(owner) BETWEEN 1 AND 200 AND owner !~ '[[:cntrl:]]'),
    CONSTRAINT import_job_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT import_job_skipped_count_check CHECK (skipped_count >= 0),
    CONSTRAINT import_job_outcomes_check CHECK (jsonb_typeof(outcomes) = 'object'),
    CONSTRAINT import_job_parent_id_fkey FOREIGN KEY (parent_id)
        REFERENCES import_job (id) ON DELETE CASCADE,
    CONSTRAINT import_job_chunk_index_check
        CHECK ((parent_id IS NULL) = (chunk_index IS NULL) AND chunk_index >= 0),
    CONSTRAINT import_job_chunks_check CHECK (chunks IS NULL OR (chunks > 0 AND parent_id IS NULL))
)
-- Room on each page for a flush's new row version: no flush writes an
-- indexed column, so every flush is a HOT update that writes no index.
WITH (fillfactor = 70);

COMMENT ON TABLE import_job IS 'One row per import of question-answer pairs (importjob).';

-- The seed's index: list_by_status, oldest first.
CREATE INDEX ix_import_job_status ON import_job (status, created_at, id);
-- list_recent, newest first.
CREATE INDEX ix_import_job_created_at ON import_job (created_at, id);
-- purge_finished, oldest ended first.
CREATE INDEX ix_import_job_completed_at ON import_job (completed_at)
    WHERE completed_at IS NOT NULL;
-- Jobs by the file they read.
CREATE INDEX ix_import_job_source_sha256 ON import_job (source_sha256)
    WHERE source_sha256 IS NOT NULL;
-- create(unique_source=True): one live or completed import of a file per
-- owner (jobs without an owner are one owner of their own). A failed or
-- cancelled one leaves the index, so the file can be tried again.
CREATE UNIQUE INDEX import_job_source_once_per_owner
    ON import_job (owner, source_sha256) NULLS NOT DISTINCT
    WHERE unique_source AND status IN ('pending', 'processing', 'completed');
-- list_recent(owner=...), newest first.
CREATE INDEX ix_import_job_owner ON import_job (owner, created_at, id);
-- list_by_status(owner=...) and list_recent(owner=..., status=...).
CREATE INDEX ix_import_job_owner_status ON import_job (owner, status, created_at, id);
-- list_recent(metadata=...): containment (@>) of the application's fields.
CREATE INDEX ix_import_job_metadata ON import_job USING gin (metadata jsonb_path_ops);
-- A parent's chunks in order: its sums, children(), the end of its last chunk.
CREATE INDEX ix_import_job_parent ON import_job (parent_id, chunk_index)
    WHERE parent_id IS NOT NULL;
-- A parent's processing chunks, which a read of the parent adds to its sums.
CREATE INDEX ix_import_job_processing_chunk ON import_job (parent_id)
    WHERE parent_id IS NOT NULL AND status = 'processing';
-- claim_next: the lowest round's oldest job, and the round being claimed now.
CREATE INDEX ix_import_job_claim ON import_job (claim_round, created_at, id)
    WHERE status = 'pending' AND chunks IS NULL;
-- An owner's last waiting round, after which its next job waits.
CREATE INDEX ix_import_job_owner_round ON import_job (owner, claim_round)
    WHERE status = 'pending' AND chunks IS NULL;

-- Every error entry a job records, numbered from 1 in recording order: its
-- own table, so a job's row never rewrites a value that grows.
CREATE TABLE import_job_error (
    job_id uuid   NOT NULL,
    n      bigint NOT NULL,
    entry  jsonb  NOT NULL,
    CONSTRAINT import_job_error_pkey PRIMARY KEY (job_id, n),
    CONSTRAINT import_job_error_job_id_fkey FOREIGN KEY (job_id)
        REFERENCES import_job (id) ON DELETE CASCADE
);

-- A job's entries counted by reason (type, field, message), keyed by
-- import_job_error_key. A job has at most max_groups reasons of its own;
-- the entries of any further reason count under the all-zero key
-- ("other"), so a message that embeds the row's value cannot grow them
-- without end.
CREATE TABLE import_job_error_group (
    job_id  uuid   NOT NULL,
    key     uuid   NOT NULL,
    type    text,
    field   text,
    message text,
    count   bigint NOT NULL,
    CONSTRAINT import_job_error_group_pkey PRIMARY KEY (job_id, key),
    CONSTRAINT import_job_error_group_job_id_fkey FOREIGN KEY (job_id)
        REFERENCES import_job (id) ON DELETE CASCADE
);

-- The counts of the ended jobs by status, kept as jobs end, so that
-- job_metrics reads these rows rather than the ended jobs, which are nearly
-- all of the table (import_job_count_ended).
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

-- How many more recorded entries a job's errors array takes under
-- max_errors: none once one did not fit (errors_dropped > 0), so that the
-- array holds the log's first entries and a full array is never read
-- again. One home for the writers (add_error, advance_entries,
-- rescue_stale); inlined, as its operators are immutable.
CREATE FUNCTION import_job_errors_room(errors jsonb, errors_dropped bigint, max_errors bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN errors_dropped > 0 THEN 0
                ELSE greatest(0, max_errors - jsonb_array_length(errors)) END
$$;

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

-- A reason's key: its three texts, each length-prefixed so that no two
-- reasons share one (NULL and '' differ too).
CREATE FUNCTION import_job_error_key(type text, field text, message text)
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT md5(coalesce(length(type)::text || ':' || type, '') || ','
               || coalesce(length(field)::text || ':' || field, '') || ','
               || coalesce(length(message)::text || ':' || message, ''))::uuid
$$;

-- The reasons of a batch of entries for a job: each reason's key and texts,
-- how many of the batch's entries have it, whether the job has a group for
-- it, and for each new one its place among the batch's new reasons, in the
-- order the batch first shows them. Looked up by key, so the cost follows
-- the batch, never the job's groups; OFFSET 0 computes each key once, not
-- again in the filter that uses it.
CREATE FUNCTION import_job_error_reasons(job_id uuid, entries jsonb)
RETURNS TABLE (key uuid, type text, field text, message text, count bigint, known boolean,
               place bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
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
$$;

-- A watched job's change wakes its watchers: repo.watch and the dashboard
-- LISTEN on the job's channel and mark it watched_until a little ahead.
-- Unwatched jobs, nearly all of them, notify nobody: a notifying commit
-- takes the server's notify lock.
CREATE FUNCTION import_job_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    job import_job := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    PERFORM pg_notify('import_job_' || replace(job.id::text, '-', ''), job.id::text);
    IF job.parent_id IS NOT NULL THEN
        -- A chunk's change is its chunked import's too.
        PERFORM pg_notify('import_job_' || replace(job.parent_id::text, '-', ''),
                          job.parent_id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER import_job_notify
    AFTER UPDATE OR DELETE ON import_job
    FOR EACH ROW
    WHEN (OLD.watched_until > now())
    EXECUTE FUNCTION import_job_notify();

-- A job that becomes pending wakes the idle workers (`importjob worker`
-- LISTENs on import_job_pending): created, or handed back (a requeue, a
-- worker stopping). The payload is empty, so a transaction creating many
-- jobs sends one notification. A parent is never claimed: it wakes nobody.
CREATE FUNCTION import_job_pending_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('import_job_pending', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER import_job_created_pending
    AFTER INSERT ON import_job
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND NEW.chunks IS NULL)
    EXECUTE FUNCTION import_job_pending_notify();

CREATE TRIGGER import_job_back_to_pending
    AFTER UPDATE OF status ON import_job
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND OLD.status <> 'pending')
    EXECUTE FUNCTION import_job_pending_notify();

-- Claims go round the owners, so that one owner's thousands of waiting jobs
-- do not starve another's one (jobs without an owner are one owner of their
-- own). A job becoming pending takes a round (claim_round): one after its
-- owner's last waiting job, and never one before the round the workers
-- claim from now (the lowest waiting), so an owner that had nothing
-- waiting joins the current round rather than jumping the queue, and an
-- owner with 10,000 jobs waiting holds 10,000 rounds, one job each.
-- claim_next takes the lowest round, oldest job first. A job handed back to
-- pending (a worker stopping, a requeue) goes just before the current
-- round: its turn came already, so it is claimed next. Nothing is counted
-- per owner, so no write waits on another owner's or another transaction's.
CREATE FUNCTION import_job_claim_round() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    current_round bigint := (SELECT min(claim_round) FROM import_job
                              WHERE status = 'pending' AND chunks IS NULL);
    last_round bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Two lookups rather than IS NOT DISTINCT FROM, which no index serves.
        IF NEW.owner IS NULL THEN
            last_round := (SELECT max(claim_round) FROM import_job
                            WHERE owner IS NULL AND status = 'pending' AND chunks IS NULL);
        ELSE
            last_round := (SELECT max(claim_round) FROM import_job
                            WHERE owner = NEW.owner AND status = 'pending' AND chunks IS NULL);
        END IF;
        NEW.claim_round := greatest(last_round + 1, current_round, 1);
    ELSE
        NEW.claim_round := coalesce(current_round - 1, NEW.claim_round, 1);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER import_job_created_round
    BEFORE INSERT ON import_job
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND NEW.chunks IS NULL)
    EXECUTE FUNCTION import_job_claim_round();

CREATE TRIGGER import_job_back_to_pending_round
    BEFORE UPDATE OF status ON import_job
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND OLD.status <> 'pending' AND NEW.chunks IS NULL)
    EXECUTE FUNCTION import_job_claim_round();

-- An end appends its change to import_job_ended_change, which takes no
-- lock any other write waits on; job_metrics folds the changes into
-- import_job_ended_count. TRUNCATE empties both.
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

-- Cancel the chunks not ended of a chunked import that failed, each after
-- its parent's lock, which the caller holds (import_job_chunk_moved). A
-- chunk in the middle of a flush is waited for: a flush never waits on the
-- parent, so it ends in a moment, and its worker stops at its next flush.
-- One in the middle of its own change of status waits for the parent's
-- lock, so waiting for it would never end: past lock_timeout (short of
-- deadlock_timeout's 1 s, so that this end gives up first) it is left to
-- that change, which sees the import ended once it runs.
CREATE FUNCTION import_job_chunks_stop(failed_id uuid) RETURNS void
LANGUAGE plpgsql SET lock_timeout = '500ms' AS $$
DECLARE
    chunk_id uuid;
BEGIN
    FOR chunk_id IN SELECT id FROM import_job
                     WHERE parent_id = failed_id AND status IN ('pending', 'processing') LOOP
        BEGIN
            UPDATE import_job SET status = 'cancelled', completed_at = now(), updated_at = now()
             WHERE id = chunk_id AND status IN ('pending', 'processing');
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- A chunk changed: its parent's sums take what changed of the chunk's
-- counts outside processing (a processing chunk is summed when read), and
-- when its status moved the parent follows, under the parent's row lock so
-- that of the transactions ending chunks exactly one ends the parent. The
-- lock is taken after the chunk's (every writer goes chunk, then parent).
-- The parent becomes processing when a chunk starts; failed as soon as a
-- chunk fails (unless keep_going), its chunks not ended cancelled then
-- (a running one's worker stops at its next flush); otherwise it ends
-- with its last chunk: failed if one failed, cancelled if one was,
-- completed if all completed. ended_by keeps the chunk whose transaction
-- ended it, so that one worker is told.
CREATE FUNCTION import_job_chunk_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    parent record;
    ends_as text;
    -- What the parent holds of this chunk, before and after: its counts
    -- unless it is processing.
    was import_job := CASE WHEN OLD.status = 'processing' THEN NULL ELSE OLD END;
    now_is import_job := CASE WHEN NEW.status = 'processing' THEN NULL ELSE NEW END;
BEGIN
    SELECT status, keep_going INTO parent
      FROM import_job WHERE id = NEW.parent_id FOR NO KEY UPDATE;
    IF (was.total_rows, was.processed_rows, was.success_count, was.error_count,
        was.skipped_count, was.errors_logged, was.errors_dropped, was.outcomes)
       IS DISTINCT FROM
       (now_is.total_rows, now_is.processed_rows, now_is.success_count, now_is.error_count,
        now_is.skipped_count, now_is.errors_logged, now_is.errors_dropped, now_is.outcomes)
    THEN
        UPDATE import_job
           SET total_rows = total_rows + coalesce(now_is.total_rows, 0)
                                       - coalesce(was.total_rows, 0),
               processed_rows = processed_rows + coalesce(now_is.processed_rows, 0)
                                               - coalesce(was.processed_rows, 0),
               success_count = success_count + coalesce(now_is.success_count, 0)
                                             - coalesce(was.success_count, 0),
               error_count = error_count + coalesce(now_is.error_count, 0)
                                         - coalesce(was.error_count, 0),
               skipped_count = skipped_count + coalesce(now_is.skipped_count, 0)
                                             - coalesce(was.skipped_count, 0),
               errors_logged = errors_logged + coalesce(now_is.errors_logged, 0)
                                             - coalesce(was.errors_logged, 0),
               errors_dropped = errors_dropped + coalesce(now_is.errors_dropped, 0)
                                               - coalesce(was.errors_dropped, 0),
               -- Label by label; a label whose rows all left goes.
               outcomes = (SELECT coalesce(jsonb_object_agg(label, rows), '{}'::jsonb)
                             FROM (SELECT key AS label, sum(value) AS rows
                                     FROM (SELECT key, value::bigint AS value
                                             FROM jsonb_each_text(outcomes)
                                           UNION ALL
                                           SELECT key, value::bigint
                                             FROM jsonb_each_text(now_is.outcomes)
                                           UNION ALL
                                           SELECT key, -value::bigint
                                             FROM jsonb_each_text(was.outcomes)) AS moved
                                    GROUP BY key) AS summed
                            WHERE rows <> 0)
         WHERE id = NEW.parent_id;
    END IF;
    IF OLD.status = NEW.status THEN
        RETURN NULL;
    END IF;
    IF parent.status IN ('completed', 'failed', 'cancelled') THEN
        -- Started or requeued while its import ended (waiting on the lock
        -- of the parent that import_job_chunks_stop held): cancelled.
        IF NEW.status IN ('pending', 'processing') THEN
            UPDATE import_job SET status = 'cancelled', completed_at = now(), updated_at = now()
             WHERE id = NEW.id;
        END IF;
        RETURN NULL;
    END IF;
    IF NEW.status = 'processing' THEN
        UPDATE import_job SET status = 'processing', started_at = now(), updated_at = now()
         WHERE id = NEW.parent_id AND status = 'pending';
        RETURN NULL;
    ELSIF NEW.status = 'pending' THEN
        RETURN NULL;  -- requeued: still to be done
    ELSIF NEW.status = 'failed' AND NOT parent.keep_going THEN
        ends_as := 'failed';
    ELSIF EXISTS (SELECT FROM import_job
                   WHERE parent_id = NEW.parent_id AND status IN ('pending', 'processing')) THEN
        RETURN NULL;  -- not the last chunk
    ELSE
        SELECT CASE WHEN bool_or(status = 'failed') THEN 'failed'
                    WHEN bool_or(status = 'cancelled') THEN 'cancelled'
                    ELSE 'completed' END
          INTO ends_as
          FROM import_job WHERE parent_id = NEW.parent_id;
    END IF;
    UPDATE import_job
       SET status = ends_as, completed_at = now(), ended_by = NEW.id, updated_at = now()
     WHERE id = NEW.parent_id;
    IF ends_as = 'failed' THEN
        PERFORM import_job_chunks_stop(NEW.parent_id);  -- failed early: the rest stop
    END IF;
    RETURN NULL;
END
$$;

-- Every change of a chunk but a processing chunk's flush, the one write
-- that must not wait on its parent.
CREATE TRIGGER import_job_chunk_moved
    AFTER UPDATE ON import_job
    FOR EACH ROW
    WHEN (NEW.parent_id IS NOT NULL
          AND (OLD.status IS DISTINCT FROM NEW.status OR NEW.status <> 'processing'))
    EXECUTE FUNCTION import_job_chunk_moved();

-- Every job as its readers see it: a parent with the sums its row keeps
-- plus its processing chunks' counts and outcomes, every other job as
-- stored. The reads of sql/ select from it.
CREATE VIEW import_job_summed AS
SELECT job.id, job.status, job.source_type, job.filename,
       job.total_rows + coalesce(live.total_rows, 0) AS total_rows,
       job.processed_rows + coalesce(live.processed_rows, 0) AS processed_rows,
       job.success_count + coalesce(live.success_count, 0) AS success_count,
       job.error_count + coalesce(live.error_count, 0) AS error_count,
       job.errors, job.started_at, job.completed_at, job.created_at, job.updated_at,
       job.heartbeat_at, job.worker_id,
       job.errors_dropped + coalesce(live.errors_dropped, 0) AS errors_dropped,
       job.errors_logged + coalesce(live.errors_logged, 0) AS errors_logged,
       job.checkpoint, job.source_sha256, job.source_size,
       job.owner, job.metadata,
       job.skipped_count + coalesce(live.skipped_count, 0) AS skipped_count,
       coalesce(live.outcomes, job.outcomes) AS outcomes,
       job.parent_id, job.chunk, job.chunk_index, job.chunks, job.keep_going
  FROM import_job AS job
  LEFT JOIN LATERAL (
      SELECT sum(chunk.total_rows)::bigint AS total_rows,
             sum(chunk.processed_rows)::bigint AS processed_rows,
             sum(chunk.success_count)::bigint AS success_count,
             sum(chunk.error_count)::bigint AS error_count,
             sum(chunk.errors_dropped)::bigint AS errors_dropped,
             sum(chunk.errors_logged)::bigint AS errors_logged,
             sum(chunk.skipped_count)::bigint AS skipped_count,
             -- The parent's outcomes and its processing chunks', label by
             -- label (NULL when no chunk is processing: the parent's own).
             CASE WHEN count(*) > 0 THEN
                 (SELECT coalesce(jsonb_object_agg(label, rows), '{}'::jsonb)
                    FROM (SELECT outcome.key AS label, sum(outcome.value::bigint) AS rows
                            FROM (SELECT job.outcomes
                                  UNION ALL
                                  SELECT counted.outcomes FROM import_job AS counted
                                   WHERE counted.parent_id = job.id
                                     AND counted.status = 'processing') AS held,
                                 jsonb_each_text(held.outcomes) AS outcome
                           GROUP BY outcome.key) AS labelled)
             END AS outcomes
        FROM import_job AS chunk
       -- Only a parent has chunks to add: for any other job nothing is read.
       WHERE chunk.parent_id = job.id AND chunk.status = 'processing'
         AND job.chunks IS NOT NULL
  ) AS live ON true;
