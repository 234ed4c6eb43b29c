-- status_of: the status of one job, after update_status changed nothing.
-- FOR SHARE waits for a concurrent change of the row and reads the newest
-- committed status (FOR KEY SHARE would not wait for, nor re-read after, a
-- concurrent update of other columns): the status that refused the
-- transition, or one the job moved on to since.
-- Returns no row when no job has this id.
SELECT status, chunks
  FROM import_job
 WHERE id = %(id)s::uuid
   FOR SHARE;
