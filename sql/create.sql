-- create: insert a new pending job.
-- Returns what the database set or normalized: errors, checkpoint,
-- metadata and outcomes as jsonb holds them, created_at (the database's
-- clock unless given) and updated_at. The caller has the rest
-- (importjob.models.job_as_created), so nothing is sent back twice.
INSERT INTO import_job (
    id, status, source_type, filename, total_rows, processed_rows,
    success_count, error_count, errors, created_at, checkpoint, source_sha256, source_size,
    owner, metadata, skipped_count, outcomes
) VALUES (
    %(id)s::uuid, %(status)s::text, %(source_type)s::text, %(filename)s::text,
    %(total_rows)s::bigint, %(processed_rows)s::bigint, %(success_count)s::bigint,
    %(error_count)s::bigint, %(errors)s::jsonb, coalesce(%(created_at)s::timestamptz, now()),
    %(checkpoint)s::jsonb, %(source_sha256)s::text, %(source_size)s::bigint,
    %(owner)s::text, %(metadata)s::jsonb, %(skipped_count)s::bigint, %(outcomes)s::jsonb
)
RETURNING errors, checkpoint, metadata, outcomes, created_at, updated_at;
