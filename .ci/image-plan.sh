#!/usr/bin/env bash
# Plans the image workflow from config.yaml, so that what is published is
# exactly what the add-on manifest names: one image per architecture in
# `arch:`, named by `image:` with {arch} filled in, tagged with `version:`.
#
# Prints (and appends to $GITHUB_OUTPUT when set):
#   version=<version>
#   matrix=<JSON: {"include":[{"arch","platform","runner","image"}…]}>
# Fails when the pushed tag ($GITHUB_REF_NAME) is not v<version>, when the
# image is not under ghcr.io/<repository owner>/ ($GITHUB_REPOSITORY_OWNER),
# or when an architecture has no builder.
set -euo pipefail
cd "$(dirname "$0")/.."

field() { sed -n "s/^$1: *\"\{0,1\}\([^\"]*\)\"\{0,1\} *\$/\1/p" config.yaml; }
version=$(field version)
image=$(field image)
mapfile -t arches < <(sed -n '/^arch:/,/^[^ -]/s/^ *- *\([a-z0-9]*\) *$/\1/p' config.yaml)

fail() { echo "image-plan: $*" >&2; exit 1; }
[ -n "$version" ] || fail "config.yaml has no version"
[ -n "$image" ] || fail "config.yaml has no image (the Supervisor would build on the user's machine)"
case $image in *"{arch}"*) ;; *) fail "config.yaml image '$image' has no {arch}" ;; esac
[ ${#arches[@]} -gt 0 ] || fail "config.yaml lists no arch"
if [ -n "${GITHUB_REF_NAME:-}" ] && [ "$GITHUB_REF_NAME" != "v$version" ]; then
	fail "tag $GITHUB_REF_NAME does not match config.yaml version $version (want v$version)"
fi
if [ -n "${GITHUB_REPOSITORY_OWNER:-}" ]; then
	owner=$(printf '%s' "$GITHUB_REPOSITORY_OWNER" | tr '[:upper:]' '[:lower:]')
	case $image in
	"ghcr.io/$owner/"*) ;;
	*) fail "config.yaml image '$image' is not under ghcr.io/$owner/: a fork publishes its own images (change image:) or builds locally (remove image:, see DOCS.md)" ;;
	esac
fi

include=""
for arch in "${arches[@]}"; do
	case $arch in
	amd64) platform=linux/amd64 runner=ubuntu-latest ;;
	aarch64) platform=linux/arm64 runner=ubuntu-24.04-arm ;;
	*) fail "no builder for arch $arch" ;;
	esac
	include+="${include:+,}{\"arch\":\"$arch\",\"platform\":\"$platform\",\"runner\":\"$runner\",\"image\":\"${image//\{arch\}/$arch}\"}"
done

out="version=$version
matrix={\"include\":[$include]}"
echo "$out"
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "$out" >>"$GITHUB_OUTPUT"; fi
