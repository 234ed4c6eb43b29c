-- create: insert a new pending job.
-- Returns the stored job; created_at defaults to the database's clock.
INSERT INTO import_job (
    id, status, source_type, filename, total_rows, processed_rows,
    success_count, error_count, errors, created_at, checkpoint, source_sha256, source_size
) VALUES (
    %(id)s::uuid, %(status)s::text, %(source_type)s::text, %(filename)s::text,
    %(total_rows)s::bigint, %(processed_rows)s::bigint, %(success_count)s::bigint,
    %(error_count)s::bigint, %(errors)s::jsonb, coalesce(%(created_at)s::timestamptz, now()),
    %(checkpoint)s::jsonb, %(source_sha256)s::text, %(source_size)s::bigint
)
RETURNING id, status, source_type, filename, total_rows, processed_rows, success_count,
          error_count, errors, started_at, completed_at, created_at, updated_at,
          heartbeat_at, worker_id, errors_dropped, errors_logged,
          checkpoint, source_sha256, source_size;
