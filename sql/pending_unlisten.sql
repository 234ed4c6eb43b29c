-- pending_unlisten: stop hearing of jobs that become pending, when the web
-- server's last jobs list waiting for new jobs has gone (worker_listen.sql
-- starts it).
UNLISTEN import_job_pending;
