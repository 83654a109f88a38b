-- Issue 14: an evaluation of a composition scores the restricted-model baseline only when asked
-- (it costs one more forward pass of the model per image). Rows from before asked implicitly.
ALTER TABLE "Evaluation" ADD COLUMN "baseline" BOOLEAN NOT NULL DEFAULT false;
UPDATE "Evaluation" SET "baseline" = true WHERE "compositionId" IS NOT NULL;
