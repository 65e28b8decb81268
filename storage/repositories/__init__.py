"""One repository per aggregate; plain synchronous classes over one Database, built by
storage.store.Store.

    identity.py, meta.py        the Olm account; display name and creation time
    contacts.py, sessions.py    contacts and requests; the chat layer's JSON state (request
                                flows, Olm sessions)
    conversations.py, messages.py   conversations; messages, their state history, search
    outbox.py, reliability.py   what must still go out; SDS channels, cursors, received hashes
    communities.py, telemetry.py    communities and their keys; the telemetry queue
"""
