# Rampart: one image for every service and the backup CLI (docs/deployment.md).
# Stage 1 builds a release on Debian 12 with the build packages of scripts/deps.sh that the C
# build needs; stage 2 is debian:12-slim with only the runtime libraries, the six binaries and
# the schema migrations. The UI and the OpenAPI document are embedded in rampart-dashboard.
# The command picks the service: `docker run IMAGE rampart-worker` (default: rampart-dashboard).

FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
# CMakeLists.txt checks every pkg-config module at configure time (cmocka and glib too, for tests).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libpq-dev librabbitmq-dev libmongoc-dev libbson-dev \
      libmicrohttpd-dev libcurl4-openssl-dev libsodium-dev libpcre2-dev libzstd-dev \
      libarchive-dev libcmocka-dev libglib2.0-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build /build --target \
      rampart-dashboard rampart-scheduler rampart-worker rampart-mailer rampart-connector \
      rampart-backup \
 && mkdir -p /out/bin \
 && for s in dashboard scheduler worker mailer connector backup; do \
      install -m 0755 /build/$s/rampart-$s /out/bin/; \
    done

FROM debian:12-slim
ARG DEBIAN_FRONTEND=noninteractive
# Runtime libraries only (what `ldd` shows for the six binaries), CA certificates for the
# worker's HTTPS tests and the alert channels, curl for the HEALTHCHECK.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates curl tzdata \
      libpq5 librabbitmq4 libmongoc-1.0-0 libbson-1.0-0 libmicrohttpd12 libcurl4 \
      libsodium23 libpcre2-8-0 libzstd1 libarchive13 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 rampart \
 && useradd --system --uid 10001 --gid rampart --home-dir /var/lib/rampart --shell /usr/sbin/nologin rampart \
 && mkdir -p /var/lib/rampart /var/backups/rampart \
 && chown rampart:rampart /var/lib/rampart /var/backups/rampart
COPY --from=build /out/bin/ /usr/local/bin/
COPY common/migrations/ /usr/share/rampart/migrations/

# In a container the endpoint must listen on every interface, not the loopback default.
# HEALTHCHECK_PORT only tells the HEALTHCHECK below which port that is; set it with
# RAMPART_HTTP_LISTEN when a service uses another port (docker-compose.yml does).
ENV RAMPART_MIGRATIONS_DIR=/usr/share/rampart/migrations \
    RAMPART_HTTP_LISTEN=0.0.0.0:8080 \
    HEALTHCHECK_PORT=8080 \
    RAMPART_BACKUP_DIR=/var/backups/rampart
USER 10001:10001
WORKDIR /var/lib/rampart
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${HEALTHCHECK_PORT}/readyz" >/dev/null || exit 1
CMD ["rampart-dashboard"]
