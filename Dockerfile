# syntax=docker/dockerfile:1
#
# Targets:
#   runtime (default, last stage)  CPU image for the API, workers and migrations.
#   gpu                            CUDA worker image with @tensorflow/tfjs-node-gpu.
#
# The build stage compiles once (`npm run build`) and then prunes the dev dependencies; the images
# hold only dist/ (the generated Prisma client compiled in), prisma/migrations (read by
# migrate-main) and the production node_modules, all owned by root, and run `node` on the entry
# directly. Compose runs them read-only: only the blobs volume and a /tmp tmpfs are writable.

# Every stage runs the same Node: the gpu image copies this binary, so native addons compiled
# here load there too (same ABI).
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS base
WORKDIR /app


FROM base AS build
# node-gyp compiles the tfjs-node addon when no prebuilt binary matches the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Only what `npm ci` and its postinstall (stage-tfjs-node, prisma generate) read, so edits to src/
# do not invalidate the dependency layers.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma/ prisma/
COPY scripts/ scripts/
RUN npm ci
# package.json denies tfjs-node's own install script (`allowScripts`) because development
# machines are air-gapped, and the postinstall then falls back to wasm. This build has internet,
# so fetch libtensorflow and the addon here. The script skips work already done; a failure
# still leaves a working image on the wasm backend.
RUN cd node_modules/@tensorflow/tfjs-node \
 && PATH="/app/node_modules/.bin:$PATH" npm_config_nodedir=/usr/local node scripts/install.js \
 || true
COPY tsconfig*.json ./
COPY src/ src/
COPY web/ web/
# Regenerate the Prisma client: COPY src/ may have brought a stale src/store/generated from the host.
RUN npx prisma generate && npm run build
# Production dependencies only (typescript, jest, tsx, biome... go); the tfjs-node addon built
# above stays, it is an optional dependency.
RUN npm prune --omit=dev --no-audit --no-fund


FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04 AS gpu-base
# Node from the official image rather than a distro package: it is the exact build the
# dependencies were installed with, and its binaries run on Ubuntu 22.04's glibc.
COPY --from=base /usr/local/bin/node /usr/local/bin/node
COPY --from=base /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
# node-gyp uses these headers instead of downloading them.
COPY --from=base /usr/local/include/node /usr/local/include/node
# uid 1000 matches `node` in the CPU image, so both can write the shared blobs volume.
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && useradd --uid 1000 --user-group --create-home --shell /bin/bash node
WORKDIR /app


# A separate stage keeps the compilers out of the gpu image and builds any addon against the
# same Ubuntu it will run on.
FROM gpu-base AS gpu-build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app /app
# Its install script downloads the CUDA build of libtensorflow and the prebuilt addon.
# --omit=dev: without it npm would reinstall the dev dependencies the build stage pruned.
RUN npm install --no-save --omit=dev --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0


FROM gpu-base AS gpu
ENV NODE_ENV=production BLOB_DIR=/data/blobs TFJS_BACKEND=tensorflow
COPY --from=gpu-build /app/node_modules /app/node_modules
COPY --from=gpu-build /app/dist /app/dist
COPY --from=gpu-build /app/prisma/migrations /app/prisma/migrations
# A named volume mounted over /data/blobs takes this directory's owner; root-owned, `node` could not write.
RUN mkdir -p /data/blobs && chown -R node:node /data
VOLUME /data
USER node
# `npm run worker` without npm: the image has no sources to check a build against.
CMD ["node", "dist/src/worker-main.js"]


FROM base AS runtime
ENV NODE_ENV=production PORT=3000 HOST=0.0.0.0 BLOB_DIR=/data/blobs TFJS_BACKEND=auto
COPY --from=build /app/node_modules /app/node_modules
COPY --from=build /app/dist /app/dist
COPY --from=build /app/prisma/migrations /app/prisma/migrations
# A named volume mounted over /data/blobs takes this directory's owner; root-owned, `node` could not write.
RUN mkdir -p /data/blobs && chown -R node:node /data
VOLUME /data
EXPOSE 3000
USER node
# The start period covers the migrations and the TF.js backend selection before the API listens.
# Worker and migrate containers reuse this image without serving HTTP; compose disables the check there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# `npm start` without npm (main.js migrates, then serves).
CMD ["node", "dist/src/main.js"]
