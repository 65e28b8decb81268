"""Waku metadata (66/WAKU2-METADATA): the cluster/shard handshake on every connection.

    wire.py      METADATA_PROTOCOL, ShardInfo, encode_metadata, decode_metadata (MetadataError)
    core.py      judge (a Verdict: may the peer stay?), MetadataBook (what peers told us,
                 their open inbound streams), MetadataOutcome (sans-IO)
    service.py   MetadataService: the node service every Node mounts

Nothing is imported here: the service brings trio and py-libp2p.
"""
