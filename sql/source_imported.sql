-- source_imported: the job that imported a file for an owner, after
-- create_unique found none in its snapshot but the unique index stopped it
-- (a concurrent create committed meanwhile): read with a new snapshot.
-- Returns the oldest pending, processing or completed job of this owner
-- (NULL is one owner of its own) and source_sha256, or no row.
SELECT id
  FROM import_job
 WHERE source_sha256 = %(source_sha256)s::text
   AND owner IS NOT DISTINCT FROM %(owner)s::text
   AND status IN ('pending', 'processing', 'completed')
 ORDER BY created_at, id
 LIMIT 1;
