-- Each run of a job takes a fresh lease; the run's writes to the row name it. A run whose queue lock
-- lapsed while it was still alive (another worker took the job over) then cannot overwrite the
-- newer run's progress or finish the job a second time.
ALTER TABLE "Job" ADD COLUMN "leaseId" TEXT;
