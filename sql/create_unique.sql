-- create_unique: insert a new pending job unless its owner imported its
-- file: create(unique_source=True). The file counts as imported while a
-- job of the same owner (NULL is one owner of its own) with the same
-- source_sha256 is pending, processing or completed. A job seen by this
-- statement's snapshot is found by the read; one that commits meanwhile is
-- caught by the unique index import_job_source_once_per_owner (the insert
-- waits for it, then does nothing), so of two concurrent creates exactly
-- one inserts.
-- Returns one row: existing_id NULL and what create.sql returns of the
-- stored job, or the id of a job of the same owner and file and NULLs.
-- Returns no row when the index caught a job the snapshot could not see:
-- the caller reads it.
WITH existing AS (
    SELECT id
      FROM import_job
     WHERE source_sha256 = %(source_sha256)s::text
       AND owner IS NOT DISTINCT FROM %(owner)s::text
       AND status IN ('pending', 'processing', 'completed')
     ORDER BY created_at, id
     LIMIT 1
), created AS (
    INSERT INTO import_job (
        id, status, source_type, filename, total_rows, processed_rows,
        success_count, error_count, errors, created_at, checkpoint, source_sha256,
        source_size, owner, metadata, skipped_count, outcomes, unique_source
    )
    SELECT %(id)s::uuid, %(status)s::text, %(source_type)s::text, %(filename)s::text,
           %(total_rows)s::bigint, %(processed_rows)s::bigint, %(success_count)s::bigint,
           %(error_count)s::bigint, %(errors)s::jsonb,
           coalesce(%(created_at)s::timestamptz, now()), %(checkpoint)s::jsonb,
           %(source_sha256)s::text, %(source_size)s::bigint, %(owner)s::text,
           %(metadata)s::jsonb, %(skipped_count)s::bigint, %(outcomes)s::jsonb, true
     WHERE NOT EXISTS (SELECT FROM existing)
        ON CONFLICT (owner, source_sha256)
           WHERE unique_source AND status IN ('pending', 'processing', 'completed')
           DO NOTHING
    RETURNING errors, checkpoint, metadata, outcomes, created_at, updated_at
)
SELECT existing.id AS existing_id, created.*
  FROM created
  FULL JOIN existing ON true;
