#!/usr/bin/env bash
# Prints the directory that holds the Pulumi CLI (`pulumi`) and its YAML language host
# (`pulumi-language-yaml`), building both if needed, for `make testpulumi` and `make demo-pulumi`.
#
# Like tools/install-tofu.sh: no Pulumi download site is needed, only the Go module proxy. Both are
# built from the nested module pulumi/ (its go.mod lists them as tools), so they are exactly the
# versions the bridged provider is built against: pulumi-yaml does not compile against every
# github.com/pulumi/pulumi/pkg/v3, and pulumi/go.mod pins the pair that does. The binaries are
# cached outside the clone in a directory named after both versions, so repeated CI runs on one
# machine build them once (a few minutes on 2 cores), and changing a version in pulumi/go.mod
# builds the new pair beside the old one.
# Progress goes to stderr; stdout carries only the directory.
set -euo pipefail

mod="$(cd "$(dirname "${BASH_SOURCE[0]}")/../pulumi" && pwd)"

# The version a module has in pulumi/go.mod (a require line, tidy's format).
modversion() {
	local v
	v="$(awk -v m="$1" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$mod/go.mod")"
	if [[ -z $v ]]; then
		echo "install-pulumi: $1 is not required in $mod/go.mod" >&2
		exit 1
	fi
	echo "$v"
}
cli="$(modversion github.com/pulumi/pulumi/pkg/v3)"
yaml="$(modversion github.com/pulumi/pulumi-yaml)"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/zonegit-tools"
dir="$cache/pulumi-$cli-yaml-$yaml"

if [[ -x $dir/pulumi && -x $dir/pulumi-language-yaml ]]; then
	echo "$dir"
	exit 0
fi

mkdir -p "$cache"
echo "install-pulumi: building the Pulumi CLI $cli and pulumi-language-yaml $yaml from the Go module proxy (a few minutes)..." >&2
# Build into a temporary directory beside the destination and rename it: the cached directory
# only ever holds complete binaries, even if this build is interrupted or another runs meanwhile.
tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Without the -X flags both print an empty version ("pulumi version" prints nothing), which is
# what Pulumi's own release builds set them to.
ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$cli"
ldflags+=" -X github.com/pulumi/pulumi-yaml/pkg/version.Version=$yaml"
(cd "$mod" && GOWORK=off go build -ldflags "$ldflags" -o "$tmp/" \
	github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
	github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml) >&2
PULUMI_SKIP_UPDATE_CHECK=1 PULUMI_HOME="$tmp/.home" "$tmp/pulumi" version >&2
rm -rf "$tmp/.home"
# mv -T refuses to replace a directory another build completed meanwhile; that one is as good.
if ! mv -T "$tmp" "$dir" 2>/dev/null && [[ ! -x $dir/pulumi || ! -x $dir/pulumi-language-yaml ]]; then
	echo "install-pulumi: cannot move $tmp to $dir" >&2
	exit 1
fi
echo "install-pulumi: built $dir" >&2
echo "$dir"
