#!/usr/bin/env bash
# Prints the path of a pinned golangci-lint, installing it from the Go module proxy on first use.
# The binary is cached outside the clone so repeated CI runs on one machine do not rebuild it.
# The cache directory names the Go version too: golangci-lint refuses to lint a module whose
# `go` line is newer than the Go it was built with, so a toolchain upgrade must trigger a rebuild.
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail

version="${GOLANGCI_LINT_VERSION:-v2.15.0}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/zonegit-tools"
gover="$(go env GOVERSION)"
dir="$cache/golangci-lint-$version-$gover"
out="$dir/golangci-lint"

if [[ ! -x $out ]]; then
	echo "install-golangci-lint: building golangci-lint $version with $gover (about a minute)..." >&2
	mkdir -p "$cache"
	# Install into a temporary GOBIN, then rename into place, so an interrupted build never
	# leaves a half-written binary at the cached path.
	tmp="$(mktemp -d "$cache/.golangci-lint-tmp.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	GOBIN="$tmp" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version" >&2
	mkdir -p "$dir"
	mv -f "$tmp/golangci-lint" "$out"
fi
echo "$out"
