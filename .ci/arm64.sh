#!/usr/bin/env bash
# Proves the aarch64 build on an amd64 machine: cross-compiles the binary
# with cgo (Debian's gcc-aarch64-linux-gnu) through packaging/build.sh, the
# script the Dockerfile uses, and runs it under qemu-user:
#   - `version` prints the version it was built with;
#   - every real telegram of the libmbus corpus decodes byte for byte as it
#     does in the native build (same JSON, same exit code);
#   - the unit tests of the codec (mbus) and of the SQLite store run as
#     arm64 test binaries (go test -exec qemu-aarch64).
# Used by .ci/run, which installs the cross compiler and qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."

cross=aarch64-linux-gnu-gcc
command -v "$cross" >/dev/null || { echo "arm64: $cross not found (Debian gcc-aarch64-linux-gnu)" >&2; exit 1; }
command -v qemu-aarch64 >/dev/null || { echo "arm64: qemu-aarch64 not found (Debian qemu-user)" >&2; exit 1; }
# Test binaries are linked dynamically against the arm64 glibc of
# libc6-dev-arm64-cross; qemu finds its loader there.
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

version=ci-arm64
GOARCH=arm64 CC=$cross packaging/build.sh "$version" "$out/mbus-gateway"
if ! head -c 20 "$out/mbus-gateway" | od -An -tx1 | tr -d ' \n' | grep -q '^7f454c46020101.*b700$'; then
	echo "arm64: $out/mbus-gateway is not an aarch64 ELF executable" >&2
	exit 1
fi
got=$(qemu-aarch64 "$out/mbus-gateway" version)
if [ "$got" != "mbus-gateway $version" ]; then
	echo "arm64: version prints '$got', want 'mbus-gateway $version'" >&2
	exit 1
fi
echo "$got (aarch64 under qemu)"

go build -o "$out/native" ./mbus_gateway
n=0
for hex in mbus_gateway/internal/mbus/testdata/libmbus/*/*.hex; do
	want_code=0 got_code=0
	"$out/native" decode --format json - <"$hex" >"$out/want.json" 2>&1 || want_code=$?
	qemu-aarch64 "$out/mbus-gateway" decode --format json - <"$hex" >"$out/got.json" 2>&1 || got_code=$?
	if [ "$want_code" != "$got_code" ] || ! cmp -s "$out/want.json" "$out/got.json"; then
		echo "arm64: $hex decodes differently on aarch64 (exit $got_code, native $want_code):" >&2
		diff "$out/want.json" "$out/got.json" >&2 || true
		exit 1
	fi
	n=$((n + 1))
done
if [ "$n" -lt 100 ]; then
	echo "arm64: only $n telegrams found in the libmbus corpus" >&2
	exit 1
fi
echo "arm64: $n telegrams decode as in the native build"

# Same tags and C flags as packaging/build.sh, so the SQLite C code compiled
# for the binary above is reused from the build cache. TestCommittedSurvivesKill
# starts the test binary again as a child to kill it; qemu-user cannot start
# an arm64 child without binfmt_misc, so that one runs in the native suite only.
GOARCH=arm64 CC=$cross CGO_ENABLED=1 CGO_CFLAGS=-Os go test -count=1 \
	-tags 'netgo osusergo sqlite_omit_load_extension nethttpomithttp2 nodemo' \
	-skip '^TestCommittedSurvivesKill$' \
	-exec qemu-aarch64 ./mbus_gateway/internal/mbus/ ./mbus_gateway/internal/store/
