#!/usr/bin/env bash
# Usage: tools/with-tfcli.sh NAME PATH COMMAND [ARGS...]
# Runs COMMAND with the environment that Terraform CLI NAME (terraform|tofu, as printed by
# tools/find-terraform.sh) at PATH needs for our acceptance tests and doc generation (DESIGN §8):
#   - CHECKPOINT_DISABLE=1: no download site is reachable; never let anything try.
#   - TF_CLI_CONFIG_FILE -> an existing empty file: our machines export a path that does not
#     exist, and OpenTofu then prints a warning on stdout that breaks terraform-plugin-testing's
#     version parsing ("unable to parse version").
#   - TF_ACC_TERRAFORM_PATH=PATH: the binary terraform-plugin-testing must use (it never downloads).
#   - TF_ACC_PROVIDER_HOST=registry.opentofu.org for OpenTofu, so the reattached provider matches
#     OpenTofu's default registry (otherwise: "Invalid provider namespace").
#   - PATH starts with a directory holding PATH under the name `terraform`, because tfplugindocs
#     looks up exactly that name.
set -euo pipefail

if [[ $# -lt 3 ]]; then
	echo "usage: $0 NAME PATH COMMAND [ARGS...]" >&2
	exit 2
fi
name="$1" cli="$2"
shift 2

cache="${XDG_CACHE_HOME:-$HOME/.cache}/zonegit-tools"
mkdir -p "$cache"
rc="$cache/empty.tfrc"
[[ -f $rc ]] || : >"$rc"

# One shim directory per CLI path, so concurrent runs against different CLIs do not collide.
shim="$cache/shim/$(printf '%s' "$cli" | cksum | cut -d' ' -f1)"
mkdir -p "$shim"
ln -sfn "$cli" "$shim/terraform"

export CHECKPOINT_DISABLE=1
export TF_CLI_CONFIG_FILE="$rc"
export TF_ACC_TERRAFORM_PATH="$cli"
export PATH="$shim:$PATH"
case "$name" in
tofu) export TF_ACC_PROVIDER_HOST=registry.opentofu.org ;;
terraform) unset TF_ACC_PROVIDER_HOST ;;
*) echo "with-tfcli: unknown CLI name '$name' (want terraform or tofu)" >&2; exit 2 ;;
esac
exec "$@"
