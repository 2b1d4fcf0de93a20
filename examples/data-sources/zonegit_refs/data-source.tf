# Every zone and branch tip of the provider's primary.
data "zonegit_refs" "primary" {}

# Only the example.com. subtree.
data "zonegit_refs" "example" {
  zone_filter = ["example.com.", "*.example.com."]
}

output "main_tip" {
  value = data.zonegit_refs.primary.tips["example.com./main"]
}

output "example_branches" {
  value = [for b in data.zonegit_refs.example.branches : "${b.zone}/${b.name} at ${b.hash}"]
}
