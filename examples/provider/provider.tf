provider "zonegit" {
  # Or set ZONEGIT_PRIMARY_URL.
  primary_url = "https://primary.example:9354"

  # Or set ZONEGIT_TOKEN.
  token = var.zonegit_token

  # A private CA for the primary's certificate, and a client certificate
  # when the primary requires mutual TLS.
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

variable "zonegit_token" {
  type      = string
  sensitive = true
}
