"""Finding peers without a fleet: mDNS on the LAN, rendezvous per shard."""
