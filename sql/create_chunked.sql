-- create_chunked: insert a chunked import, a pending parent job and one
-- pending job per chunk, in one statement. A chunk takes its parent's
-- source type, filename, owner, metadata and creation time, its place in
-- the list (chunk_index, from 0), its rows and the application's spec.
-- chunks is a JSON array of {"total_rows": n, "spec": value}.
-- Returns the parent, then the chunks in order.
WITH parent AS (
    INSERT INTO import_job (
        id, source_type, filename, total_rows, errors, created_at, source_sha256,
        source_size, owner, metadata, chunks, keep_going
    ) VALUES (
        %(id)s::uuid, %(source_type)s::text, %(filename)s::text,
        (SELECT sum((piece ->> 'total_rows')::bigint)
           FROM jsonb_array_elements(%(chunks)s::jsonb) AS piece),
        %(errors)s::jsonb, coalesce(%(created_at)s::timestamptz, now()),
        %(source_sha256)s::text, %(source_size)s::bigint, %(owner)s::text,
        %(metadata)s::jsonb, jsonb_array_length(%(chunks)s::jsonb), %(keep_going)s::boolean
    )
    RETURNING id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes,
       parent_id, chunk, chunk_index, chunks, keep_going
), children AS (
    INSERT INTO import_job (
        source_type, filename, total_rows, created_at, owner, metadata,
        parent_id, chunk_index, chunk
    )
    SELECT parent.source_type, parent.filename, (piece.value ->> 'total_rows')::bigint,
           parent.created_at, parent.owner, parent.metadata,
           parent.id, piece.n - 1, piece.value -> 'spec'
      FROM parent,
           jsonb_array_elements(%(chunks)s::jsonb) WITH ORDINALITY AS piece (value, n)
    RETURNING id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes,
       parent_id, chunk, chunk_index, chunks, keep_going
)
SELECT * FROM (SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes,
       parent_id, chunk, chunk_index, chunks, keep_going FROM parent
               UNION ALL
               SELECT id, status, source_type, filename, total_rows, processed_rows, success_count,
       error_count, errors, started_at, completed_at, created_at, updated_at,
       heartbeat_at, worker_id, errors_dropped, errors_logged,
       checkpoint, source_sha256, source_size,
       owner, metadata, skipped_count, outcomes,
       parent_id, chunk, chunk_index, chunks, keep_going FROM children) AS created
 ORDER BY chunk_index NULLS FIRST;
