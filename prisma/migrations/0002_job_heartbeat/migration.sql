-- A running job's worker touches heartbeatAt while it works, so a job row whose queue entry was
-- lost (Redis restarted empty) is only queued again once no worker is on it.
ALTER TABLE "Job" ADD COLUMN "heartbeatAt" TIMESTAMP(3);
