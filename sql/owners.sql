-- owners: the owner of each of the given jobs, read through the primary
-- key, for a caller that decides who may see a job before reading it.
-- Returns (id, owner) for each id that has a job (owner NULL for a job
-- without one); no row for an id without a job.
SELECT id, owner
  FROM import_job
 WHERE id = ANY (%(ids)s::uuid[]);
