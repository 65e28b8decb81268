"""Waku metadata (66/WAKU2-METADATA): the cluster/shard handshake on every connection."""
