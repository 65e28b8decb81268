"""The node stack: Waku v2 protocols (relay, store, filter, light push, metadata) on py-libp2p."""
