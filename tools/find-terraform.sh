#!/usr/bin/env bash
# Prints one line "NAME PATH" per Terraform CLI the acceptance tests run against (DESIGN §8).
# NAME is "terraform" or "tofu", decided from the binary's own `version` output, because the
# test environment differs per CLI (tools/with-tfcli.sh). Order:
#   - TF_ACC_TERRAFORM_PATH if set: only that one;
#   - otherwise `terraform` on PATH if present (users run it), and always OpenTofu (users run it
#     too): `tofu` on PATH if present, else built and cached by tools/install-tofu.sh.
# With --first, prints only the first CLI found (and builds OpenTofu only if nothing else exists):
# enough for `make generate`, which needs some CLI but not all of them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
first=false
[[ ${1-} == --first ]] && first=true

# `version` must not phone home (no download site is reachable; it would only add latency).
export CHECKPOINT_DISABLE=1

kind() {
	# Not `| grep -q`: under pipefail grep's early exit would make the pipeline fail (SIGPIPE)
	# and class OpenTofu as Terraform.
	local v
	v="$("$1" version 2>/dev/null || true)"
	if [[ $v == *OpenTofu* ]]; then echo tofu; else echo terraform; fi
}

emit() {
	echo "$(kind "$1") $1"
	if $first; then exit 0; fi
}

if [[ -n ${TF_ACC_TERRAFORM_PATH-} ]]; then
	[[ -x $TF_ACC_TERRAFORM_PATH ]] || { echo "find-terraform: TF_ACC_TERRAFORM_PATH=$TF_ACC_TERRAFORM_PATH is not executable" >&2; exit 1; }
	emit "$TF_ACC_TERRAFORM_PATH"
	exit 0
fi

have_tofu=false
if tf="$(command -v terraform)"; then
	[[ $(kind "$tf") == tofu ]] && have_tofu=true
	emit "$tf"
fi
if ! $have_tofu; then
	if tofu="$(command -v tofu)"; then
		emit "$tofu"
	else
		tofu="$("$here/install-tofu.sh")" # assigned first so a failed build stops us (set -e)
		emit "$tofu"
	fi
fi
