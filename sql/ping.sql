-- ping: whether the database answers and holds the import_job table, for
-- /healthz (a missing table raises undefined_table).
-- Returns one row: 1 when there is any job, else 0 (reads at most one row).
SELECT count(*) FROM (SELECT 1 FROM import_job LIMIT 1) AS any_job;
