#!/usr/bin/env bash
# Prints the path of an OpenTofu binary for the acceptance tests (DESIGN §8), building it if needed.
#
# No Terraform/OpenTofu download site is reachable from our machines, only the Go module proxy.
# OpenTofu's go.mod has replace directives, so `go install ...@version` refuses it; downloading the
# module and running `go build` inside the (read-only) module cache directory works, because
# go build writes only the -o output. The binary is cached outside the clone under a versioned
# name so repeated CI runs on one machine build it once (about 2-4 minutes on 2 cores).
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail

version="${TOFU_VERSION:-1.12.6}"
bin="${XDG_CACHE_HOME:-$HOME/.cache}/zonegit-tools/bin"
out="$bin/tofu-$version"

if [[ -x $out ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$bin"
echo "install-tofu: building OpenTofu $version from the Go module proxy (a few minutes)..." >&2
# Run from the cache dir so no enclosing go.mod/go.work is consulted (never touch our go.mod).
if ! json="$(cd "$bin" && GOWORK=off go mod download -json "github.com/opentofu/opentofu@v$version")"; then
	echo "$json" >&2
	echo "install-tofu: go mod download failed" >&2
	exit 1
fi
dir="$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$json")"
if [[ -z $dir || ! -d $dir ]]; then
	echo "install-tofu: no module directory in: $json" >&2
	exit 1
fi

# Build next to the destination and rename: the cached path only ever holds a complete binary,
# even if this build is interrupted or another one runs at the same time.
tmp="$(mktemp "$out.tmp.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# The -X flag is what OpenTofu's release builds set: without it the binary calls itself
# "1.12.6-dev", a prerelease, which version checks in tests (tfversion) treat as older than 1.12.6.
(cd "$dir" && GOWORK=off go build -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$tmp" ./cmd/tofu) >&2
CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$tmp" version >&2
mv -f "$tmp" "$out"
trap - EXIT
echo "install-tofu: built $out" >&2
echo "$out"
