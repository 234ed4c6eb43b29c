-- export_errors_jsonl_chunked: export_errors_jsonl of a chunked import:
-- the entries of its chunks (and its own, first), in chunk order, then
-- each chunk's recording order. The server sorts them (within work_mem,
-- else on disk); the client still gets them as a stream.
-- Returns the COPY data; the command tag counts the entries.
COPY (
    SELECT logged.entry
      FROM import_job AS job
      JOIN import_job_error AS logged ON logged.job_id = job.id
     WHERE job.id = %(id)s::uuid OR job.parent_id = %(id)s::uuid
     ORDER BY job.chunk_index NULLS FIRST, logged.n
) TO STDOUT WITH (FORMAT csv, DELIMITER E'\x02', QUOTE E'\x01');
