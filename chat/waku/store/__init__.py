"""Store v3 (`/vac/waku/store-query/3.0.0`): message history from a service node's archive.

    wire.py         PROTOCOL_ID, StoreQueryRequest/StoreQueryResponse (StoreWireError),
                    encode_stored_response
    server_core.py  plan_query, answer: request bytes in, an archive query out; rows in, a
                    response out (sans-IO)
    server.py       StoreServer: the node service, with its request gate and byte budget
    client.py       StoreClient: queries, pagination, presence checks (StoreClientError)
    archiver.py     what a store node keeps (ineligibility) and MessageArchiver, which
                    writes to a storage.archive backend

Nothing is imported here: the drivers bring trio and py-libp2p.
"""
