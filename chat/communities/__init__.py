"""Communities, sans-IO: what the messenger's community kind drives.

    roles.py        owner, admin, member, and who may do what to whom
    signer.py       the Ed25519 signers a community knows (its owner key, a member's chat key)
    description.py  the signed, versioned description; the id derived from the owner key
    book.py         the newest valid description per community (forged, older, oversized out)
    link.py         the community link (text, QR) and its decoder
    shards.py       picking a free shard from the network's community range
    join.py         join requests as request flows (a transition table, like groups/invites.py)
    answers.py      signed join answers, checked against the description's roles
    channel.py      channel messages: the epoch's content key, the sender's signature inside
    moderation.py   kick, ban, roles, channels: the next description and what rotates

None of them sends, stores or sleeps: the messenger passes the time in and persists what they
return before anything is published.
"""
