-- watch_session: set up the connection of a process's watches (importjob._watch.Hub).
-- It marks and reads every watched job of the process in turn, so a mark
-- waits for a writer's row lock at most %(lock_timeout)s milliseconds: a
-- transaction that holds one job's row must not stall the other watches.
SELECT set_config('lock_timeout', %(lock_timeout)s::text, false);
