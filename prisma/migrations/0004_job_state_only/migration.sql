-- A resource's state is its job's (the job row is the one record): the copies that processors
-- wrote outside the job lease, and that a cancelled run left "active" for ever, go.
ALTER TABLE "Evaluation" DROP COLUMN "status";
ALTER TABLE "Decomposition" DROP COLUMN "status";
ALTER TABLE "Composition" DROP COLUMN "status";

-- Evaluations of compositions map dataset class names to the composition's labels.
ALTER TABLE "Evaluation" ADD COLUMN "labelMapping" JSONB;

-- Lists page newest first by (createdAt, id), per owner.
CREATE INDEX "Job_ownerId_createdAt_id_idx" ON "Job"("ownerId", "createdAt", "id");
CREATE INDEX "Evaluation_compositionId_idx" ON "Evaluation"("compositionId");
CREATE INDEX "Evaluation_datasetId_idx" ON "Evaluation"("datasetId");
