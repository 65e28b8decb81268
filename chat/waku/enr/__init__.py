"""Ethereum Node Records (EIP-778, identity scheme "v4") with the Waku fields (WAKU2-ENR).

    rlp.py          the RLP subset an ENR needs: byte strings and lists, bounded, canonical
    record.py       Enr: decode (size, order, signature checked), sign, the `enr:` text form
                    (EnrError is the one error for every malformed record)
    waku_fields.py  the Waku keys: `multiaddrs`, the `waku2` capability bits, `rs`/`rsv`
                    shards, and the record a node hands out for itself (node_enr)

Nothing here does I/O.
"""
