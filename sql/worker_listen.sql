-- worker_listen: an idle worker hears of every job that becomes pending
-- (import_job_pending_notify).
LISTEN import_job_pending;
