"""Waku relay: our own gossipsub v1.1 router on /vac/waku/relay/2.0.0 (docs/relay.md).

    wire.py        the pubsub RPC: decode_rpc (RpcError), message_id, frame encoders,
                   ControlBatch
    core.py        Router, the sans-IO gossipsub core; Send, Deliver, Disconnect;
                   NoPeersReached, DuplicateMessage
    score.py, mcache.py, params.py, verdict.py    the core's parts: PeerScore, MessageCache,
                   GossipParams/ScoreParams/Thresholds, Accept/Reject/Ignore and Validator
    driver.py      RelayDriver: the core on a py-libp2p host (trio), with sendqueue.py's
                   bounded SendQueue per peer and faults.py's RelayFaults
    service.py     RelayService: the node service (router, driver, validator, message sinks)
    metrics.py     RelayCounters
    sim.py         SimNetwork: many routers on a simulated network, for tests and benchmarks

Nothing is imported here: `chat.messenger.config` needs only faults.py, and the driver
brings trio and py-libp2p.
"""
