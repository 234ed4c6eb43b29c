-- worker_rescue_lock: take the cluster's rescue lock for this transaction
-- if no other worker holds it: one worker at a time runs rescue_stale.
-- The key: the bytes 'importjo' read as a bigint.
-- Returns true when taken.
SELECT pg_try_advisory_xact_lock(7596851770407807599);
