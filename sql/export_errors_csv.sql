-- export_errors_csv: stream a job's whole error log as CSV, a header row
-- then one line per entry in recording order: n, the entry's common fields
-- as text (empty when absent) and the whole entry as JSON.
-- psycopg binds the id client-side: COPY takes no server-side parameters.
-- Returns the COPY data; the command tag counts the entries.
COPY (
    SELECT n,
           entry ->> 'type' AS type,
           entry ->> 'row' AS "row",
           entry ->> 'line_number' AS line_number,
           entry ->> 'field' AS field,
           entry ->> 'message' AS message,
           entry ->> 'value' AS value,
           entry
      FROM import_job_error
     WHERE job_id = %(id)s::uuid
     ORDER BY n
) TO STDOUT WITH (FORMAT csv, HEADER);
