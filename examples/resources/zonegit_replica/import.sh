# A replica is imported by its directory; the next apply adopts the
# configuration's filters and pins.
terraform import zonegit_replica.all /var/lib/zonegit/secondary
