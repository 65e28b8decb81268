"""mDNS LAN discovery, the libp2p way, limited to our cluster.

    wire.py      the libp2p mDNS names and TXT strings, MDNS_PORT; a bounded DNS codec
                 (DnsError)
    core.py      MdnsCore: queries and announcements out, discovered peers in (sans-IO);
                 Discovered
    service.py   MdnsService: the node service on an IPv4 multicast UDP socket

Nothing is imported here: the service brings trio.
"""
