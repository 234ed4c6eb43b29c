-- Undo importjob-0001-create-import-job: the index goes with the table.
DROP TABLE import_job;
