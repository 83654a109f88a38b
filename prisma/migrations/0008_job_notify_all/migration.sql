-- The API keeps job views in memory between changes (store/job-view-cache.ts), so every change of
-- what a job view shows must notify, not only the ones a watcher needed: the start and finish times
-- too, a deleted row (its id), and a TRUNCATE ('*': every job may have changed).
CREATE OR REPLACE FUNCTION "job_notify_changed"() RETURNS trigger AS $$
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    PERFORM pg_notify('job_changed', '*');
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('job_changed', OLD."id");
  ELSE
    PERFORM pg_notify('job_changed', NEW."id");
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER "Job_notify_update" ON "Job";

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
    OR OLD."startedAt" IS DISTINCT FROM NEW."startedAt"
    OR OLD."finishedAt" IS DISTINCT FROM NEW."finishedAt"
    OR OLD."resourceId" IS DISTINCT FROM NEW."resourceId"
    OR OLD."ownerId" IS DISTINCT FROM NEW."ownerId"
  )
  EXECUTE FUNCTION "job_notify_changed"();

CREATE TRIGGER "Job_notify_delete" AFTER DELETE ON "Job"
  FOR EACH ROW EXECUTE FUNCTION "job_notify_changed"();

CREATE TRIGGER "Job_notify_truncate" AFTER TRUNCATE ON "Job"
  FOR EACH STATEMENT EXECUTE FUNCTION "job_notify_changed"();
