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
# (dlopen) are left out.
set -eu
version=${1:?usage: build.sh VERSION OUTPUT}
out=${2:?usage: build.sh VERSION OUTPUT}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")/.."
CGO_ENABLED=1 exec go build -trimpath \
	-tags 'netgo osusergo sqlite_omit_load_extension' \
	-ldflags "-s -w -X main.version=${version} -linkmode=external -extldflags=-static" \
	-o "$out" ./mbus_gateway
