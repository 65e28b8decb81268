"""Filter v2 (12/WAKU2-FILTER): subscriptions on a service node, pushes to light clients.

    wire.py         protocol ids, FilterStatus, SubscribeRequest/SubscribeResponse/MessagePush
                    (FilterWireError)
    server_core.py  FilterSubscriptions: who is subscribed to what, until when (sans-IO)
    client_core.py  FilterClientCore: which service nodes hold our subscriptions (sans-IO)
    server.py       FilterServer: the node service answering subscriptions, pushing messages
    client.py       FilterClient: subscribes through the client core, receives pushes

Nothing is imported here: the drivers bring trio and py-libp2p.
"""
