# A replica is imported by its directory, which must be a zonegit repository
# with at least one branch. Import records the zones and branch names it
# holds as zones and branches; primary_url, pins, prune and destroy_data come
# from the configuration.
terraform import zonegit_replica.all /var/lib/zonegit/secondary
