// Prisma CLI configuration. The JS schema engine with the pg adapter keeps `prisma generate` and
// `prisma migrate diff` offline (the classic engine downloads a binary). Migrations are applied
// by our own runner (src/store/migrate.ts), not by `prisma migrate deploy`.
import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';

// The schema reads env("DATABASE_URL"); without it the CLI falls back to downloading engines.
const url = (process.env.DATABASE_URL ??= 'postgresql://postgres:postgres@127.0.0.1:5432/cnn_modules');

export default defineConfig({
  schema: 'prisma/schema.prisma',
  experimental: { adapter: true },
  engine: 'js',
  adapter: async () => new PrismaPg({ connectionString: url }),
});
