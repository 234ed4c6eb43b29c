-- export_errors_csv: stream a job's whole error log (its head too) as CSV,
-- a header row then one line per entry in recording order: n, the entry's
-- common fields as text (empty when absent) and the whole entry as JSON.
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
      FROM (
          -- The job's entries: the head's from the errors column (its last
          -- errors_head elements, migration 0018), then the log's past it. A
          -- job from before 0018 (errors_head NULL) has every entry in the log.
          -- Each part ordered on its own, so that the planner merges them
          -- (the log's through its key) rather than sorting them all.
          (SELECT item.n - head.given AS n, item.value AS entry
             FROM (SELECT errors, jsonb_array_length(errors) - errors_head AS given
                     FROM import_job
                    WHERE id = %(id)s::uuid AND errors_head > 0
                   -- Computed once, not inlined into the filter of each element.
                   OFFSET 0) AS head,
                  jsonb_array_elements(head.errors) WITH ORDINALITY AS item (value, n)
            WHERE item.n > head.given
            ORDER BY 1)
          UNION ALL
          (SELECT n, entry
             FROM import_job_error
            WHERE job_id = %(id)s::uuid
              AND n > (SELECT coalesce(errors_head, 0) FROM import_job WHERE id = %(id)s::uuid)
            ORDER BY n)
      ) AS entries
     ORDER BY n
) TO STDOUT WITH (FORMAT csv, HEADER true);
