"""Reliability: message states and the outbox, SDS end-to-end acknowledgements, store checks.

    outbox.py         Outbox: message states (queued/sent/stored/delivered/failed) as one
                      transition table with evidence; RetryPolicy (sans-IO)
    sds.py            SdsFrame (SdsError), SdsChannel: causal order and acknowledgements
                      (sans-IO)
    bloom.py          BloomFilter, RollingBloomFilter, byte for byte like @waku/sds
    store_checks.py   StoreChecks: presence checks, scans, catch-up (sans-IO)
    store_queries.py  StoreQueries: the store checks' trio driver against store nodes

docs/reliability.md says what each state proves. Nothing is imported here: the driver
brings trio.
"""
