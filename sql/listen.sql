-- listen: receive the notifications of one job's changes (import_job_notify).
-- {channel} is import_job_<id as 32 hex digits>, composed in as an
-- identifier with psycopg.sql.Identifier: LISTEN takes no parameters.
LISTEN {channel};
