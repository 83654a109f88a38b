-- A resource's state is its job's (the job row is the one record): the copies that processors
-- wrote outside the job lease, and that a cancelled run left "active" for ever, go.
ALTER TABLE "Evaluation" DROP COLUMN "status";
ALTER TABLE "Decomposition" DROP COLUMN "status";
ALTER TABLE "Composition" DROP COLUMN "status";

-- Evaluations of compositions: a dataset class name -> composition label mapping, and a foreign
-- key, so a composition cannot be deleted under an evaluation being recorded (the insert and the
-- delete serialize on it; the loser gets a 409).
ALTER TABLE "Evaluation" ADD COLUMN "labelMapping" JSONB;
ALTER TABLE "Evaluation" ADD CONSTRAINT "Evaluation_compositionId_fkey" FOREIGN KEY ("compositionId") REFERENCES "Composition"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
CREATE INDEX "Evaluation_compositionId_idx" ON "Evaluation"("compositionId");
CREATE INDEX "Evaluation_datasetId_idx" ON "Evaluation"("datasetId");

-- Lists page newest first by (createdAt, id) per owner: one index range read a page.
DROP INDEX "Model_ownerId_idx";
DROP INDEX "Dataset_ownerId_idx";
DROP INDEX "Decomposition_ownerId_idx";
DROP INDEX "Module_ownerId_idx";
DROP INDEX "Composition_ownerId_idx";
DROP INDEX "Evaluation_ownerId_idx";
DROP INDEX "Job_ownerId_idx";
CREATE INDEX "Model_ownerId_createdAt_id_idx" ON "Model"("ownerId", "createdAt", "id");
CREATE INDEX "Dataset_ownerId_createdAt_id_idx" ON "Dataset"("ownerId", "createdAt", "id");
CREATE INDEX "Decomposition_ownerId_createdAt_id_idx" ON "Decomposition"("ownerId", "createdAt", "id");
CREATE INDEX "Module_ownerId_createdAt_id_idx" ON "Module"("ownerId", "createdAt", "id");
CREATE INDEX "Composition_ownerId_createdAt_id_idx" ON "Composition"("ownerId", "createdAt", "id");
CREATE INDEX "Evaluation_ownerId_createdAt_id_idx" ON "Evaluation"("ownerId", "createdAt", "id");
CREATE INDEX "Job_ownerId_createdAt_id_idx" ON "Job"("ownerId", "createdAt", "id");
