"""Finding peers without a fleet: mDNS on the LAN, rendezvous per shard.

    mdns/           our own libp2p mDNS, limited to our cluster
    rendezvous.py   RendezvousPoint and ShardRendezvous over py-libp2p's rendezvous protocol

mdns/ is a protocol folder (wire.py, core.py, service.py); rendezvous is one module because
its wire and core are py-libp2p's.
"""
