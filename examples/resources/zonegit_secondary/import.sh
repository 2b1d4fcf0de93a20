# A secondary is imported by its daemon's URL. The daemon must have a desired
# state (set by an earlier apply, or by another client of its control API),
# which becomes the imported zones, branches, pins, prune and follow. Import
# reads the daemon with the provider's secondary_token and TLS settings.
terraform import zonegit_secondary.ns1 https://ns1.example:9355

# One instance of a for_each fleet (quote the key for the shell):
terraform import 'zonegit_secondary.fleet["ns2"]' https://ns2.example:9355
