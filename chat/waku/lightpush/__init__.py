"""Light push v3 and legacy v2: a light client hands a message to a service node to relay.

    wire.py         protocol ids, LightPushStatus, PushRequest/PushResponse and the v2
                    messages (LightPushWireError)
    server_core.py  push: a decoded request in, an Outcome out (sans-IO; PublishRejected)
    client_core.py  ServicePool and verdict: which nodes to use, when to retry (sans-IO)
    server.py       LightPushServer: the node service, v3 and v2 over one publish callable
    client.py       LightPushClient, push_once: redundant push to two nodes with failover

Nothing is imported here: the drivers bring trio and py-libp2p.
"""
