#!/usr/bin/env bash
# `make demo-pulumi`: examples/pulumi end to end on this machine, with nothing but Go.
#
#  1. builds pulumi-resource-zonegit and zonegit-replicate into a temporary directory;
#  2. imports examples/quickstart/*.zone into a primary repository and serves
#     it with `zonegit-replicate serve` on a free loopback port;
#  3. runs the Pulumi YAML program with a local file backend (no Pulumi Cloud,
#     no plugin downloads): up, prints the replica's refs, commits a change on
#     the primary, shows the preview for it, up again, destroy;
#  4. stops the primary and removes everything it created.
#
# The Pulumi CLI is `pulumi` from PATH (a Pulumi installation includes the YAML
# language host), or the one tools/install-pulumi.sh builds and caches.
# Set ZONEGIT_DEMO_KEEP=1 to keep the work directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/examples/demo-lib.sh"
demo_init pulumi-demo

step "Finding the Pulumi CLI"
if command -v pulumi >/dev/null && command -v pulumi-language-yaml >/dev/null; then
	:
else
	echo "pulumi (with pulumi-language-yaml) is not on PATH; building it (a few minutes, cached)"
	PATH="$(bash "$root/tools/install-pulumi.sh"):$PATH"
fi
# Everything stays in $work: state, credentials, plugin cache.
export PULUMI_HOME="$work/home"
export PULUMI_CONFIG_PASSPHRASE=demo
export PULUMI_SKIP_UPDATE_CHECK=1
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
pulumi version

step "Building pulumi-resource-zonegit and zonegit-replicate"
# The example names its provider as ../../bin; the copy in $work keeps that layout.
mkdir -p "$work/bin" "$work/examples/pulumi"
version="$(cat "$root/VERSION")"
(cd "$root/pulumi" && go build -ldflags "-X main.version=$version" -o "$work/bin/pulumi-resource-zonegit" ./cmd/pulumi-resource-zonegit)
(cd "$root" && go build -o "$work/bin/zonegit-replicate" ./cmd/zonegit-replicate)
zr="$work/bin/zonegit-replicate"
ls "$work/bin"

step "Importing the quickstart zones into a primary repository"
primary="$work/primary"
import_quickstart "$primary"

step "Starting the primary"
start_zr primary "$work/serve.log" serve --repo "$primary" --listen 127.0.0.1:0 --poll 200ms
url="$started_url"
echo "primary at $url"

cp "$root/examples/pulumi/Pulumi.yaml" "$work/examples/pulumi/"
run() { pulumi --cwd "$work/examples/pulumi" --non-interactive --color never "$@"; }

step "pulumi login (a local file backend) and a stack"
mkdir -p "$work/state"
run login "file://$work/state"
run stack init demo
run config set zonegit:primaryUrl "$url"
run config set replicaPath "$work/secondary"

step "pulumi up (creates the replica)"
run up --yes

step "The replica's refs"
run stack output replicaRefs

step "Committing a change on the primary (www.example.com. moves)"
sed -e 's/2026010101 ; serial/2026010102 ; serial/' -e 's/^www     IN A    192.0.2.10$/www     IN A    192.0.2.11/' \
	"$root/examples/quickstart/example.com.zone" >"$work/example.com.zone"
"$zr" import --repo "$primary" --zone example.com. --file "$work/example.com.zone" -m "move www to 192.0.2.11"
sleep 1 # the primary picks up new commits within --poll

step "pulumi preview --diff (shows the new hash for example.com./main)"
run preview --diff

step "pulumi up (pulls it)"
run up --yes --skip-preview

step "The replica's refs after the change"
run stack output replicaRefs

step "pulumi preview --expect-no-changes"
run preview --expect-no-changes

step "pulumi destroy (forgets the replica; its data stays, as destroyData is false)"
run destroy --yes --skip-preview

step "Stopping the primary"
stop_all
echo "done"
