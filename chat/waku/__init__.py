"""The node stack: Waku v2 protocols (relay, store, filter, light push, metadata) on py-libp2p.

It imports nothing from the rest of chat/. Public modules (import them by name: this file
imports nothing, so that `chat.errors` and `chat.config`, which re-export a few names from
here, stay cheap to import):

    message.py, topics.py        WakuMessage and its hash; shard and content topics
    framing.py, protowire.py     length-prefixed frames; parse-or-raise and optional fields
                                 for every protobuf codec
    protected.py, validation.py  protected-shard signatures; the relay validator pipeline
    host.py, node.py             WakuHost (py-libp2p); Node, which mounts NodeServices
    network.py, errors.py        default cluster and shards, NetworkSettings; UserError
    service_node.py              the service node `chinwag node` runs
    peers.py, peer_manager.py    the peer manager's core and its node service
    health.py, health_monitor.py the health core and its node service
    connectivity.py              peer manager, health and discovery mounted in one call
    inbound_limits.py, inbound_gate.py    which inbound connections are kept; the listener
    inbound_sources.py           what counts as one source address (IPv6 /64, trusted proxies)
    ratelimit.py, request_gate.py, server_gate.py    what a request/response server admits
    reqres.py, write_pace.py     one request, one response over a stream; its write deadline
    admission.py, metrics.py     HTTP connection admission; Prometheus /metrics

Protocol folders, one shape each (docs/architecture.md, "Protocol folders"): relay/,
store/, filter/, lightpush/, metadata/, and discovery/mdns/ (rendezvous.py beside it);
proto/ holds the Waku protobufs.
"""
