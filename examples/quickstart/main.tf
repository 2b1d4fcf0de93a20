# Quickstart: replicate every zone of a local zonegit primary into a
# secondary directory, and read the primary's branch tips as data.
# `make demo` runs it end to end against a throwaway primary.

terraform {
  required_providers {
    zonegit = {
      source = "zonegit/zonegit"
    }
  }
}

variable "primary_url" {
  description = "Base URL of the zonegit primary, e.g. http://127.0.0.1:9354."
  type        = string
}

variable "replica_path" {
  description = "Directory of the secondary repository."
  type        = string
  default     = "./secondary"
}

provider "zonegit" {
  primary_url = var.primary_url
}

resource "zonegit_replica" "secondary" {
  path = var.replica_path
}

data "zonegit_refs" "primary" {}

output "replica_refs" {
  description = "Branch tips in the secondary after apply."
  value       = zonegit_replica.secondary.refs
}

output "primary_tips" {
  description = "Branch tips the primary offers."
  value       = data.zonegit_refs.primary.tips
}

output "last_pull" {
  description = "What the last apply transferred."
  value       = zonegit_replica.secondary.last_pull
}
