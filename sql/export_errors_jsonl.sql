-- export_errors_jsonl: stream a job's whole error log (its head too) as
-- JSON lines, one entry per line in recording order. CSV with a delimiter
-- and a quote that jsonb's text never holds (it escapes every control
-- character) writes each entry's text as it is, where the text format would
-- double its backslashes. The entries are read as export_errors_csv reads
-- them (a COPY is one statement: each export holds its own).
-- Returns the COPY data; the command tag counts the entries.
COPY (
    SELECT entry
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
) TO STDOUT WITH (FORMAT csv, DELIMITER E'\x02', QUOTE E'\x01');
