"""The Textual face of chinwag. Talks to the core only (chat.messenger's public names,
chat.events, chat.session, chat.errors), never to storage/, chat/waku or libp2p: the profile's
chats are read through the session (tests/unit/test_layering.py holds it to that)."""
