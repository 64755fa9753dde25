#!/usr/bin/env bash
# Builds the binary on this machine the way the Dockerfile does (same script,
# same flags, the version from the Dockerfile's BUILD_VERSION) and starts it
# the way the image does: through run.sh (with the image's binary path
# replaced by the one built here), on an options file in a temporary data
# directory. Checks that /health answers 200 and that SIGTERM ends the
# process with exit code 0. Used by .ci/run, where Docker is not available.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^ARG BUILD_VERSION=//p' Dockerfile)
if [ -z "$version" ]; then
	echo "build-like-docker: no 'ARG BUILD_VERSION=' in Dockerfile" >&2
	exit 1
fi
out=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
	rm -rf "$out"
}
trap cleanup EXIT

packaging/build.sh "$version" "$out/mbus-gateway"

got=$("$out/mbus-gateway" version)
if [ "$got" != "mbus-gateway $version" ]; then
	echo "build-like-docker: version prints '$got', want 'mbus-gateway $version'" >&2
	exit 1
fi
echo "$got"
"$out/mbus-gateway" validate-config packaging/options.example.yaml
# The image leaves the demo out; asking for it must say so, not fail oddly.
if "$out/mbus-gateway" demo 2>"$out/demo.err"; then
	echo "build-like-docker: 'demo' succeeded in a build without it" >&2
	exit 1
fi
if ! grep -q "this build has no demo" "$out/demo.err"; then
	echo "build-like-docker: 'demo' said: $(cat "$out/demo.err")" >&2
	exit 1
fi

# A free loopback port for the status page and one that nothing listens on
# for the bus and the broker: the gateway must start and stay healthy while
# it retries them.
free_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	echo "build-like-docker: no free port found" >&2
	return 1
}
web=$(free_port)
dead=$(free_port)
cat >"$out/options.yaml" <<OPTIONS
tcp_address: 127.0.0.1:$dead
meters:
  - address: "1"
mqtt:
  host: 127.0.0.1
  port: $dead
data_dir: $out/data
web_port: $web
web_allow: ["127.0.0.1"]
metrics_port: 0
OPTIONS
sed "s#/usr/bin/mbus-gateway#$out/mbus-gateway#" run.sh >"$out/run.sh"
sh "$out/run.sh" --config "$out/options.yaml" >"$out/log" 2>&1 &
pid=$!

health() {
	exec 3<>"/dev/tcp/127.0.0.1/$web" || return 1
	printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	head -n 1 <&3 | grep -q ' 200 '
}
ok=""
for _ in $(seq 1 100); do
	if health 2>/dev/null; then ok=1; break; fi
	if ! kill -0 "$pid" 2>/dev/null; then break; fi
	sleep 0.1
done
if [ -z "$ok" ]; then
	echo "build-like-docker: /health did not answer 200; log:" >&2
	cat "$out/log" >&2
	exit 1
fi
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
if [ "$rc" -ne 0 ]; then
	echo "build-like-docker: exit code $rc after SIGTERM, want 0; log:" >&2
	cat "$out/log" >&2
	exit 1
fi
echo "build-like-docker: ok (started through run.sh, /health 200, SIGTERM exit 0)"
