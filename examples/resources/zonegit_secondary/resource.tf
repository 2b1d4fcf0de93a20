# One secondary daemon, holding exactly the reviewed commits of the main
# branches of two zones. The control token comes from the provider
# (secondary_token, or ZONEGIT_SECONDARY_TOKEN / ZONEGIT_SECONDARY_TOKEN_FILE).
resource "zonegit_secondary" "ns1" {
  url      = "https://ns1.example:9355"
  zones    = ["example.com.", "example.org."]
  branches = ["main"]
  prune    = true
}

# A fleet: every daemon in var.secondaries, example.com. held at a reviewed
# commit while the other zones follow the primary between applies.
variable "secondaries" {
  type = map(string) # name => daemon URL
  default = {
    ns2 = "https://ns2.example:9355"
    ns3 = "https://ns3.example:9355"
  }
}

resource "zonegit_secondary" "fleet" {
  for_each = var.secondaries

  url    = each.value
  follow = true
  pins = {
    "example.com./main" = "3fa1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
  }

  # A daemon with a certificate from a CA of its own, and mutual TLS.
  ca_cert_pem     = file("${path.module}/secondaries-ca.pem")
  client_cert_pem = file("${path.module}/terraform-client.pem")
  client_key_pem  = file("${path.module}/terraform-client-key.pem")

  timeouts {
    create = "1h"
    update = "10m"
    delete = "2m"
  }
}

output "fleet_refs" {
  value = { for name, s in zonegit_secondary.fleet : name => s.refs }
}
