terraform {
  required_providers {
    zonegit = {
      source = "zonegit/zonegit"
    }
  }
}

provider "zonegit" {
  # Or set ZONEGIT_PRIMARY_URL.
  primary_url = "https://primary.example:9354"

  # Or set ZONEGIT_TOKEN, or ZONEGIT_TOKEN_FILE naming a file that holds it.
  token = var.zonegit_token

  # A private CA for the primary's certificate, and a client certificate
  # when the primary requires mutual TLS. Each may also come from the
  # environment: ZONEGIT_CA_CERT_PEM, ZONEGIT_CLIENT_CERT_PEM and
  # ZONEGIT_CLIENT_KEY_PEM, or their _FILE variants naming PEM files.
  ca_cert_pem     = file("${path.module}/ca.pem")
  client_cert_pem = file("${path.module}/secondary.pem")
  client_key_pem  = file("${path.module}/secondary-key.pem")

  request_timeout = "30s"
  concurrency     = 8

  retry {
    attempts     = 4
    min_delay_ms = 200
    max_delay_ms = 5000
  }
}

# Ephemeral (Terraform 1.10+, OpenTofu 1.11+): the token is kept out of
# saved plan files as well as state. Set it with TF_VAR_zonegit_token.
variable "zonegit_token" {
  type      = string
  sensitive = true
  ephemeral = true
}
