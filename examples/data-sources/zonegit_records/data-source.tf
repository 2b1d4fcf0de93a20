# The records of example.com. on the primary's main branch.
data "zonegit_records" "main" {
  zone = "example.com."
  ref  = "main"
}

# What main changes compared with the release tag, for the web names only.
data "zonegit_records" "web_changes" {
  zone      = "example.com."
  ref       = "main"
  diff_from = "v1"
  names     = ["example.com.", "www.example.com."]
  types     = ["A", "AAAA"]
}

# The same commit read from a local replica instead of the primary.
data "zonegit_records" "local" {
  zone = "example.com."
  ref  = data.zonegit_records.main.commit
  path = "/var/lib/zonegit/replica"
}

output "zone_file" {
  value = data.zonegit_records.main.zone_file
}

# Refuse to roll out a commit that deletes records or loses www A 192.0.2.10.
resource "zonegit_replica" "edge" {
  path = "/var/lib/zonegit/edge"
  pins = { "example.com./main" = data.zonegit_records.main.commit }

  lifecycle {
    precondition {
      condition     = length(data.zonegit_records.web_changes.removed) == 0
      error_message = "The commit removes ${join(", ", data.zonegit_records.web_changes.removed)}."
    }
    precondition {
      condition = anytrue([
        for r in data.zonegit_records.main.records :
        r.name == "www.example.com." && r.type == "A" && contains(r.rdata, "192.0.2.10")
      ])
      error_message = "www.example.com. A 192.0.2.10 is missing from ${data.zonegit_records.main.commit}."
    }
  }
}
