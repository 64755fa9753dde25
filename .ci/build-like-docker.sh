#!/bin/sh
# Builds the binary on this machine the way the Dockerfile does (same script,
# same flags, the version from the Dockerfile's BUILD_VERSION) and starts it
# the way the image would: "version", then "validate-config" on the example
# options file. Useful where Docker is not available.
set -eu
cd "$(dirname "$0")/.."

version=$(sed -n 's/^ARG BUILD_VERSION=//p' Dockerfile)
if [ -z "$version" ]; then
	echo "build-like-docker: no 'ARG BUILD_VERSION=' in Dockerfile" >&2
	exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

packaging/build.sh "$version" "$out/mbus-gateway"

got=$("$out/mbus-gateway" version)
if [ "$got" != "mbus-gateway $version" ]; then
	echo "build-like-docker: version prints '$got', want 'mbus-gateway $version'" >&2
	exit 1
fi
echo "$got"

"$out/mbus-gateway" validate-config packaging/options.example.yaml
echo "build-like-docker: ok"
