-- export_errors_csv_chunked: export_errors_csv of a chunked import: the
-- entries of its chunks (and its own, first), in chunk order, then each
-- chunk's recording order, n numbering them in that order from 1. The
-- server sorts them (within work_mem, else on disk); the client still gets
-- them as a stream.
-- Returns the COPY data; the command tag counts the entries.
COPY (
    SELECT row_number() OVER (ORDER BY job.chunk_index NULLS FIRST, logged.n) AS n,
           logged.entry ->> 'type' AS type,
           logged.entry ->> 'row' AS "row",
           logged.entry ->> 'line_number' AS line_number,
           logged.entry ->> 'field' AS field,
           logged.entry ->> 'message' AS message,
           logged.entry ->> 'value' AS value,
           logged.entry
      FROM import_job AS job
      JOIN import_job_error AS logged ON logged.job_id = job.id
     WHERE job.id = %(id)s::uuid OR job.parent_id = %(id)s::uuid
     ORDER BY job.chunk_index NULLS FIRST, logged.n
) TO STDOUT WITH (FORMAT csv, HEADER);
