# BlockRTC image: one image for every role (`signaling`, `sfu`, `migrate`, `all`,
# `turn-config`), selected by the first argument. Built from the npm registry and Debian's
# apt only: the mediasoup worker is compiled here by sfu/worker-build/build.sh (no GitHub
# download, no PyPI), exactly as on a development machine.
#
#   docker build -t blockrtc:0.1.0 .
#   docker run --rm -p 8080:8080 blockrtc:0.1.0            # embedded trial (`blockrtc all`)
#   docker run --rm blockrtc:0.1.0 signaling                 # with JWT_SECRET, DATABASE_URL, REDIS_URL…
#
# The worker build takes ~8 min on 2 cores (~16 CPU-minutes); its layer is reused as long
# as package-lock.json and sfu/worker-build/ do not change.
#
# Base image: a supported Node.js LTS on Debian bookworm (the runtime stage installs
# bookworm's libabsl20220623 etc.; another Debian release needs those names changed). Pin
# it by digest for reproducible builds, with the same image for both stages:
#
#   docker build --build-arg NODE_IMAGE=node:22-bookworm-slim@sha256:<digest> -t blockrtc:0.1.0 .
#
# (`docker buildx imagetools inspect node:22-bookworm-slim` prints the current digest.)

ARG NODE_IMAGE=node:22-bookworm-slim

# ---------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV DEBIAN_FRONTEND=noninteractive

# C++ toolchain, meson/ninja and the Debian -dev packages the worker links against.
COPY sfu/worker-build/apt-deps.sh sfu/worker-build/apt-deps.sh
RUN bash sfu/worker-build/apt-deps.sh && rm -rf /var/lib/apt/lists/*

# Dependencies. --ignore-scripts: mediasoup's own postinstall would try to download a
# prebuilt worker from GitHub (or build tools from PyPI); the worker is built below instead.
# The only other install script (esbuild's) merely verifies its platform binary.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# The mediasoup worker from the npm tarball + Debian packages; build.sh installs it into
# node_modules/mediasoup/worker/out/Release/. Its cache is kept out of /app.
COPY sfu/worker-build/ sfu/worker-build/
RUN MEDIASOUP_WORKER_CACHE_DIR=/opt/mediasoup-worker-cache bash sfu/worker-build/build.sh \
    && test -x node_modules/mediasoup/worker/out/Release/mediasoup-worker \
    && rm -rf /opt/mediasoup-worker-cache

COPY . .

# The web app (esbuild -> web/dist). Skipped only when there is no build script yet; a
# build that fails fails the image.
RUN if node -e "process.exit(require('./package.json').scripts?.['build:web'] ? 0 : 1)" && [ -f web/build.mjs ]; then \
      npm run build:web; \
    else \
      echo "no build:web script or web/build.mjs: image without the web app"; \
    fi

# The server, compiled into dist/server: production runs plain JavaScript (no TypeScript
# loader in the process: less memory, faster start).
RUN npm run build:server

# Runtime dependencies only (tsx stays for `bin/blockrtc.mjs`, which runs the sources;
# esbuild stays because tsx uses it).
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# Shared libraries of the mediasoup worker (see sfu/worker-build/README.md). Versions come
# with the pinned base image's Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libuv1 libssl3 libsrtp2-1 libabsl20220623 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 blockrtc \
    && useradd --system --uid 10001 --gid blockrtc --home-dir /app --shell /usr/sbin/nologin blockrtc

WORKDIR /app
# Code is owned by root and read-only for the service user; only .data (the embedded
# database of `blockrtc all`) is writable.
COPY --from=build /app /app
RUN mkdir -p /app/.data && chown blockrtc:blockrtc /app/.data
# Started outside mediasoup the worker exits with 41: proof that it and its libraries load.
RUN node_modules/mediasoup/worker/out/Release/mediasoup-worker; test "$?" -eq 41

# Refuse to build on a Node.js older than the supported line (e.g. a stale NODE_IMAGE).
RUN node -e "const [major] = process.versions.node.split('.').map(Number); if (major < 22) { console.error('Node.js ' + process.versions.node + ' is past its end of life; use NODE_IMAGE=node:22-bookworm-slim or newer'); process.exit(1); }"

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    METRICS_PORT=9464
USER 10001:10001
# 9464: /metrics (METRICS_PORT), for Prometheus inside the cluster only.
EXPOSE 8080 9464
ENTRYPOINT ["node", "--enable-source-maps", "dist/server/main.js"]
CMD ["all"]
