#!/usr/bin/env bash
# `make demo-fleet`: one apply moves a fleet of three secondaries, on this
# machine, with nothing but Go and a Terraform CLI.
#
#  1. builds the provider and zonegit-replicate into a temporary directory;
#  2. imports examples/quickstart/*.zone into a primary repository and serves
#     it with `zonegit-replicate serve` on a free loopback port;
#  3. starts three secondary daemons (`zonegit-replicate secondary`), each
#     owning its own replica directory, pulling from that primary;
#  4. puts the built provider into a local filesystem mirror that the CLI
#     configuration names (no registry is contacted), runs init and applies
#     examples/fleet: every daemon moves to the planned hashes;
#  5. commits a change on the primary and shows the plan (three moves), applies
#     it; holds ns3 back at the first commit while the others keep the new one;
#  6. destroys (the daemons forget their desired state and keep their data),
#     stops everything and removes what it created.
#
# The CLI is the first one tools/find-terraform.sh finds (terraform on PATH, or
# OpenTofu). Set ZONEGIT_DEMO_KEEP=1 to keep the work directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
quickstart="$root/examples/quickstart"
source "$root/examples/demo-lib.sh"
demo_init fleet-demo

step "Finding a Terraform CLI"
read -r cli_name tf < <("$root/tools/find-terraform.sh" --first)
echo "$cli_name: $tf"
"$tf" version | sed -n 1p # sed reads everything: no SIGPIPE under pipefail

step "Building the provider and zonegit-replicate"
mkdir -p "$work/bin"
version="$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)"
# The provider goes into a local filesystem mirror, in the layout `make install` uses, as the
# release version in VERSION, so that `init` installs it from there (and writes the lock file)
# without contacting any registry.
provider_version="$(cat "$root/VERSION")"
platform="$(go env GOOS)_$(go env GOARCH)"
(cd "$root" && go build -ldflags "-X main.version=$version" -o "$work/bin/terraform-provider-zonegit" .)
for host in registry.terraform.io registry.opentofu.org; do
	dir="$work/mirror/$host/zonegit/zonegit/$provider_version/$platform"
	mkdir -p "$dir"
	cp "$work/bin/terraform-provider-zonegit" "$dir/terraform-provider-zonegit_v$provider_version"
done
(cd "$root" && go build -ldflags "-X main.version=$version" -o "$work/bin/zonegit-replicate" ./cmd/zonegit-replicate)
zr="$work/bin/zonegit-replicate"

step "Importing the quickstart zones into a primary repository"
primary="$work/primary"
import_quickstart "$primary"

step "Starting the primary"
start_zr primary "$work/primary.log" serve --repo "$primary" --listen 127.0.0.1:0 --poll 200ms
primary_url="$started_url"
echo "primary at $primary_url"

step "Starting three secondary daemons"
# One control token for the fleet; Terraform reads it from the _FILE variable.
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/control-token"
export ZONEGIT_SECONDARY_TOKEN_FILE="$work/control-token"
fleet="{"
for ns in ns1 ns2 ns3; do
	start_zr "$ns" "$work/$ns.log" secondary --repo "$work/$ns" --listen 127.0.0.1:0 \
		--primary "$primary_url" --control-token-file "$work/control-token"
	url="$started_url"
	echo "$ns at $url (replica $work/$ns)"
	fleet+="$ns = \"$url\", "
done
fleet+="}"

# The provider comes from the mirror, for either CLI's default registry host; nothing else is
# installable, so nothing is looked up anywhere.
cat >"$work/mirror.tfrc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$work/mirror"
    include = ["registry.terraform.io/zonegit/zonegit", "registry.opentofu.org/zonegit/zonegit"]
  }
}
RC
export TF_CLI_CONFIG_FILE="$work/mirror.tfrc"
export TF_IN_AUTOMATION=1
export TF_VAR_secondaries="$fleet"

# Terraform runs in a copy, so no state or lock files land in the clone.
mkdir -p "$work/tf"
cp "$root/examples/fleet/main.tf" "$work/tf/"
run() { "$tf" -chdir="$work/tf" "$@"; }

step "$cli_name init (installs the provider from the local mirror)"
run init -input=false -no-color

step "$cli_name apply (every secondary moves to the planned hashes)"
run apply -auto-approve -input=false -no-color

step "Committing a change on the primary (www.example.com. moves)"
old="$(run output -no-color -json refs | sed -n 's/.*"example\.com\.\/main":"\([0-9a-f]*\)".*/\1/p' | sed -n 1p)"
sed -e 's/2026010101 ; serial/2026010102 ; serial/' -e 's/^www     IN A    192.0.2.10$/www     IN A    192.0.2.11/' \
	"$quickstart/example.com.zone" >"$work/example.com.zone"
"$zr" import --repo "$primary" --zone example.com. --file "$work/example.com.zone" -m "move www to 192.0.2.11"
sleep 1 # the primary picks up new commits within --poll

step "$cli_name plan (three moves, one per secondary)"
run plan -input=false -no-color -out=change.tfplan

step "$cli_name apply of that plan (each daemon pulls exactly the planned hashes)"
run apply -input=false -no-color change.tfplan

step "Holding ns3 back at the previous commit ($old) while ns1 and ns2 keep the new one"
run apply -auto-approve -input=false -no-color \
	-var "pins={\"example.com./main\" = \"$old\"}" -var 'held_back=["ns3"]'
run output -no-color refs

step "$cli_name destroy (the daemons forget their desired state and keep their data)"
run destroy -auto-approve -input=false -no-color \
	-var "pins={\"example.com./main\" = \"$old\"}" -var 'held_back=["ns3"]'
for ns in ns1 ns2 ns3; do
	url="$(sed -n 's/.*serving .* on \(https\{0,1\}:\/\/[0-9.:]*\).*/\1/p' "$work/$ns.log" | sed -n 1p)"
	echo "$ns still serves:"
	"$zr" refs --primary "$url" | sed 's/^/  /'
done

step "Stopping the primary and the secondaries"
stop_all
echo "done"
