"""Peer exchange (34/WAKU2-PEER-EXCHANGE, `/vac/waku/peer-exchange/2.0.0-alpha1`): a light
client asks a service node for node records (ENRs, chat/waku/enr) of further service nodes.

    wire.py     PROTOCOL, PxStatus, PeerExchangeRequest/PeerExchangeResponse (PxWireError)
    core.py     EnrBook (the records a server hands out, sans-IO), judge_answer (a client's
                checks on every record it gets), ServicePeerPool (failover, sans-IO)
    service.py  PeerExchangeServer: the node service; it also learns records from peers
    client.py   request_peers: ask one peer, get the records that passed the checks

Nothing is imported here: the drivers bring trio and py-libp2p.
"""
