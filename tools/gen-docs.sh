#!/usr/bin/env bash
# Generates docs/ with tfplugindocs, offline and with either Terraform or OpenTofu.
#
# tfplugindocs normally installs the provider itself and asks a CLI named `terraform` for its
# schema under registry.terraform.io/hashicorp/<name>; OpenTofu resolves providers under
# registry.opentofu.org, so that path only works with real Terraform. Instead we build the
# provider, point the CLI at it with dev_overrides (no registry, no `init`), export the schema
# with `providers schema -json`, and hand that file to tfplugindocs (--providers-schema).
# Both CLIs give the same schema, so the docs are identical whichever one is found.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
read -r name cli < <("$root/tools/find-terraform.sh" --first)
echo "gen-docs: schema from $name ($cli)" >&2

work="$(mktemp -d "${TMPDIR:-/tmp}/zonegit-docs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/cfg"

(cd "$root" && go build -o "$work/bin/terraform-provider-zonegit" .)

cat >"$work/dev.tfrc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/zonegit/zonegit" = "$work/bin"
    "registry.opentofu.org/zonegit/zonegit" = "$work/bin"
  }
  direct {}
}
RC
cat >"$work/cfg/main.tf" <<'TF'
terraform {
  required_providers {
    zonegit = { source = "zonegit/zonegit" }
  }
}
TF

# The CLI warns about dev_overrides on stderr; only the JSON goes to the file.
(cd "$work/cfg" && CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE="$work/dev.tfrc" \
	"$cli" providers schema -json >"$work/schema.raw.json")

# tfplugindocs looks the provider up by its short name first; rename whichever registry
# address the CLI used.
sed -E 's#"registry\.(terraform\.io|opentofu\.org)/zonegit/zonegit"#"zonegit"#' \
	"$work/schema.raw.json" >"$work/schema.json"
grep -q '"zonegit"' "$work/schema.json" || { echo "gen-docs: no zonegit schema in the CLI's output" >&2; exit 1; }

cd "$root"
go tool tfplugindocs generate --provider-name zonegit --providers-schema "$work/schema.json"
