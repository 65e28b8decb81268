"""Private groups, sans-IO: what the messenger's group kind drives (chat/messenger/groups.py).

    changes.py  one signed membership change: codec, signature, bounds, our own changes
    log.py      the membership log: deterministic order, the member list it yields, the rules
    invites.py  invitations as request flows (a transition table, like chat/contacts.py)
    keys.py     the group's Megolm sessions, replay refusal, the rotation policy
    wire.py     the content topic, the envelope on it, the content of its SDS frames

None of them sends, stores or sleeps: the messenger passes the time in and persists what
they return before anything is published.
"""
