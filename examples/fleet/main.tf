# A fleet of secondary daemons moved by one apply: the plan shows every
# secondary's move, and the apply makes each daemon pull exactly the planned
# hashes. `make demo-fleet` runs it end to end against a throwaway primary and
# three daemons on loopback.
#
# Each secondary is `zonegit-replicate secondary` on its own host, started with
# the primary it pulls from and a control token; Terraform talks only to the
# daemons, never to the primary. The control token comes from the environment:
#   export ZONEGIT_SECONDARY_TOKEN_FILE=/run/secrets/zonegit-secondary-token

terraform {
  required_providers {
    zonegit = {
      source = "zonegit/zonegit"
    }
  }
}

variable "secondaries" {
  description = "The fleet: name => URL of its secondary daemon (its --listen address)."
  type        = map(string)
}

variable "pins" {
  description = "Commits to hold instead of the primary's tips, \"<zone>/<branch>\" => hash, on every secondary."
  type        = map(string)
  default     = {}
}

variable "held_back" {
  description = "Secondaries that keep their pins while the rest follow the primary (a canary the other way round)."
  type        = set(string)
  default     = []
}

provider "zonegit" {}

resource "zonegit_secondary" "fleet" {
  for_each = var.secondaries

  url      = each.value
  branches = ["main"]
  prune    = true
  pins     = contains(var.held_back, each.key) ? var.pins : null
}

output "refs" {
  description = "What each secondary holds after the apply."
  value       = { for name, s in zonegit_secondary.fleet : name => s.refs }
}

output "last_pull" {
  description = "What each secondary's last apply transferred."
  value       = { for name, s in zonegit_secondary.fleet : name => s.last_pull }
}
