-- unwatch: delete one watcher's registration of a job (watch), so
-- that the job's changes stop notifying for it.
-- Returns no row.
DELETE FROM import_job_watch
 WHERE job_id = %(id)s::uuid
   AND watcher = %(watcher)s::uuid;
