#!/bin/sh
# Builds the mbus-gateway binary. The Dockerfile and the host-side check
# (.ci/build-like-docker.sh) both call this script, so the image and the check
# use the same flags.
#
# usage: packaging/build.sh VERSION OUTPUT
#
# cgo is on because the SQLite driver is C. The result is linked statically
# (musl in the image), so it runs on any Linux of the same architecture; the
# netgo/osusergo tags keep name lookups in Go, and loadable SQLite extensions
# (dlopen) are left out. The gateway needs neither HTTP/2 (nethttpomithttp2)
# nor the demo with its embedded MQTT broker (nodemo): leaving them out makes
# the binary, most of which stays resident, 1.6 MB smaller; SQLite compiled
# for size (-Os) saves another 0.35 MB.
set -eu
version=${1:?usage: build.sh VERSION OUTPUT}
out=${2:?usage: build.sh VERSION OUTPUT}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")/.."
CGO_ENABLED=1 CGO_CFLAGS="${CGO_CFLAGS:--Os}" exec go build -trimpath \
	-tags 'netgo osusergo sqlite_omit_load_extension nethttpomithttp2 nodemo' \
	-ldflags "-s -w -X main.version=${version} -linkmode=external -extldflags=-static" \
	-o "$out" ./mbus_gateway
