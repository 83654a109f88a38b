-- Push for job watchers (GET /jobs/:id/events): every committed change of what a job view shows
-- notifies channel job_changed with the job's id, whoever wrote it (worker progress, cancel,
-- reconcile, retry). Heartbeat and lease touches do not notify. Written by hand: Prisma's schema has
-- no triggers, so `prisma migrate diff` neither makes nor sees this.
CREATE FUNCTION "job_notify_changed"() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('job_changed', NEW."id");
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER "Job_notify_insert" AFTER INSERT ON "Job"
  FOR EACH ROW EXECUTE FUNCTION "job_notify_changed"();

CREATE TRIGGER "Job_notify_update" AFTER UPDATE ON "Job"
  FOR EACH ROW
  WHEN (
    OLD."state" IS DISTINCT FROM NEW."state"
    OR OLD."progress" IS DISTINCT FROM NEW."progress"
    OR OLD."stage" IS DISTINCT FROM NEW."stage"
    OR OLD."attempts" IS DISTINCT FROM NEW."attempts"
    OR OLD."cancelRequested" IS DISTINCT FROM NEW."cancelRequested"
    OR OLD."result" IS DISTINCT FROM NEW."result"
    OR OLD."error" IS DISTINCT FROM NEW."error"
  )
  EXECUTE FUNCTION "job_notify_changed"();
