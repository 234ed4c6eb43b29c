-- export_errors_jsonl: stream a job's whole error log as JSON lines, one
-- entry per line in recording order. CSV with a delimiter and a quote that
-- jsonb's text never holds (it escapes every control character) writes
-- each entry's text as it is, where the text format would double its
-- backslashes.
-- Returns the COPY data; the command tag counts the entries.
COPY (
    SELECT entry
      FROM import_job_error
     WHERE job_id = %(id)s::uuid
     ORDER BY n
) TO STDOUT WITH (FORMAT csv, DELIMITER E'\x02', QUOTE E'\x01');
