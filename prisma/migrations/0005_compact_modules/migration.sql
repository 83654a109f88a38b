-- Compact modules (issue 11): a module may carry its own cut-down network and its cost figures.
ALTER TABLE "Module" ADD COLUMN "networkBlob" TEXT;
ALTER TABLE "Module" ADD COLUMN "compact" JSONB;
