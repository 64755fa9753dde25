# Home Assistant add-on image; also usable on its own (see DOCS.md).
# The Supervisor passes BUILD_VERSION (config.yaml "version") and BUILD_ARCH.
ARG BUILD_VERSION=0.1.0
ARG BUILD_ARCH=amd64

FROM golang:1.26-alpine AS build
# gcc and musl-dev: cgo for the SQLite driver.
RUN apk add --no-cache gcc musl-dev
WORKDIR /src
COPY go.mod go.sum ./
COPY packaging/build.sh packaging/build.sh
COPY mbus_gateway mbus_gateway
ARG BUILD_VERSION
RUN packaging/build.sh "$BUILD_VERSION" /out/mbus-gateway

FROM alpine:3.23
RUN apk add --no-cache ca-certificates tzdata
COPY --from=build /out/mbus-gateway /usr/bin/mbus-gateway
COPY run.sh /run.sh
ARG BUILD_VERSION
ARG BUILD_ARCH
LABEL io.hass.version="${BUILD_VERSION}" \
      io.hass.type="addon" \
      io.hass.arch="${BUILD_ARCH}" \
      org.opencontainers.image.title="M-Bus Gateway" \
      org.opencontainers.image.source="https://github.com/mbus-gateway/mbus-gateway" \
      org.opencontainers.image.licenses="MIT"
# Docker marks the container unhealthy when this fails three times; the
# Supervisor restarts it then only if the user switched the add-on's
# Watchdog on (the manifest has no "watchdog:" key any more).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD wget -q -O /dev/null http://127.0.0.1:8099/health || exit 1
# In a container the port mapping (the add-on's ports:, docker -p) decides
# who reaches the metrics port; it needs every interface inside.
ENV MBUS_GATEWAY_METRICS_BIND=0.0.0.0
ENTRYPOINT ["/run.sh"]
