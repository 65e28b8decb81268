"""Waku relay: our own gossipsub v1.1 router on /vac/waku/relay/2.0.0 (see docs/relay.md)."""
