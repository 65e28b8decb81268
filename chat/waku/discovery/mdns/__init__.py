"""mDNS LAN discovery, the libp2p way, limited to our cluster."""
