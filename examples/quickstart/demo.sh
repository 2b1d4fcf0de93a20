#!/usr/bin/env bash
# `make demo`: the quickstart end to end on this machine, with nothing but Go.
#
#  1. builds the provider and zonegit-replicate into a temporary directory;
#  2. imports examples/quickstart/*.zone into a primary repository and serves
#     it with `zonegit-replicate serve` on a free loopback port;
#  3. points Terraform (or OpenTofu) at the built provider with a
#     dev_overrides CLI configuration, so no registry is contacted;
#  4. applies examples/quickstart, prints the replica's refs, commits a change
#     on the primary, shows the plan for it, applies it;
#  5. stops the primary and removes everything it created.
#
# The CLI is `terraform` or `tofu` from PATH, or OpenTofu built by
# tools/install-tofu.sh. Set ZONEGIT_DEMO_KEEP=1 to keep the work directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
quickstart="$root/examples/quickstart"
source "$root/examples/demo-lib.sh"
demo_init demo

# The provider comes from $work/bin, for either CLI's default registry host.
cat >"$work/dev.tfrc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/zonegit/zonegit" = "$work/bin"
    "registry.opentofu.org/zonegit/zonegit" = "$work/bin"
  }
  direct {}
}
RC
# With dev_overrides the provider needs no `terraform init` (which would try
# to reach the registry for it), so the demo goes straight to apply.
export TF_CLI_CONFIG_FILE="$work/dev.tfrc"

step "Finding a Terraform CLI"
if tf="$(command -v terraform)"; then
	:
elif tf="$(command -v tofu)"; then
	:
else
	echo "neither terraform nor tofu is on PATH; building OpenTofu (a few minutes, cached)"
	tf="$(bash "$root/tools/install-tofu.sh")"
fi
"$tf" version | sed -n 1p # sed reads everything: no SIGPIPE under pipefail

step "Building the provider and zonegit-replicate"
mkdir -p "$work/bin"
version="$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)"
(cd "$root" && go build -ldflags "-X main.version=$version" -o "$work/bin/terraform-provider-zonegit" .)
(cd "$root" && go build -ldflags "-X main.version=$version" -o "$work/bin/zonegit-replicate" ./cmd/zonegit-replicate)
zr="$work/bin/zonegit-replicate"
ls "$work/bin"

step "Importing the quickstart zones into a primary repository"
primary="$work/primary"
import_quickstart "$primary"

step "Starting the primary"
start_zr primary "$work/serve.log" serve --repo "$primary" --listen 127.0.0.1:0 --poll 200ms
url="$started_url"
echo "primary at $url"

export TF_IN_AUTOMATION=1
export TF_VAR_primary_url="$url"
export TF_VAR_replica_path="$work/secondary"

# Terraform runs in a copy, so no state or lock files land in the clone.
mkdir -p "$work/tf"
cp "$quickstart/main.tf" "$work/tf/"
run() { "$tf" -chdir="$work/tf" "$@"; }

step "terraform apply (creates the replica)"
run apply -auto-approve -input=false -no-color

step "The replica's refs"
run output -no-color replica_refs

step "Committing a change on the primary (www.example.com. moves)"
sed -e 's/2026010101 ; serial/2026010102 ; serial/' -e 's/^www     IN A    192.0.2.10$/www     IN A    192.0.2.11/' \
	"$quickstart/example.com.zone" >"$work/example.com.zone"
"$zr" import --repo "$primary" --zone example.com. --file "$work/example.com.zone" -m "move www to 192.0.2.11"
sleep 1 # the primary picks up new commits within --poll

step "terraform plan (shows the new hash for example.com./main)"
run plan -input=false -no-color -out=change.tfplan

step "terraform apply of that plan (pulls exactly the planned hashes)"
run apply -input=false -no-color change.tfplan

step "The replica's refs after the change"
run output -no-color replica_refs

step "Stopping the primary"
stop_all
echo "done"
