# Every branch of every zone the primary offers.
resource "zonegit_replica" "all" {
  path = "/var/lib/zonegit/secondary"
}

# Only the main branch of the example zones, deleting branches that leave
# that selection (deleted on the primary, or filtered out later), and deleting
# the repository on destroy.
resource "zonegit_replica" "example" {
  path         = "/var/lib/zonegit/example"
  primary_url  = "https://primary.example:9354"
  zones        = ["example.com.", "*.example.org."]
  branches     = ["main"]
  prune        = true
  destroy_data = true

  timeouts {
    create = "1h"
    update = "10m"
  }
}

# Hold example.com. at a reviewed commit (forward or back) while the rest
# follows the primary.
resource "zonegit_replica" "pinned" {
  path  = "/var/lib/zonegit/pinned"
  zones = ["example.com.", "example.net."]
  pins = {
    "example.com./main" = "3fa1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
  }
}

output "example_refs" {
  value = zonegit_replica.example.refs
}
