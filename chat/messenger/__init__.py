"""The messenger: the one façade every face uses, over one module per concern.

    facade.py             Messenger: the public commands and events, the one lock, startup
    config.py             MessengerConfig and the limits every part shares
    context.py            what the parts share: clock, profile DB, event fan-out, scheduler wake
    scheduler.py          one task for every timer; features register as `Timed`
    conversation.py       the pipeline's pluggable parts: crypto, membership, transport
    sending.py            the pipeline's sending half and the outbox (attempts, evidence)
    receive.py            the pipeline's receiving half (dedupe, open, SDS, store, reject)
    lanes.py              contacts' messages first, the strangers' backlog bounded
    channels.py, syncs.py one SDS channel per conversation; sync frames
    persist.py            persist before the wire; receive-side state saved in batches
    transport.py          the profile's transport (relay)
    node.py               what the messenger needs of its node (ClientNode, or a test's)
    olm.py                pairwise Olm: contact requests and 1:1 crypto
    direct_chats.py       1:1 chats, the first conversation kind
    contact_book.py       contacts' links, identity keys, verified flags
    contacts_flow.py      contact requests, answers and withdrawals on the wire
    strangers.py          the budget for strangers' requests (spam protection)
    verification_flow.py  emoji verification on the wire
    health.py             health view, catch-up, outages, the store driver's answers
    startup.py            what is read from the profile at start

docs/architecture.md ("How a conversation kind plugs in") shows how they fit. The faces
also get the communities' role table (who may do what), so a screen offers only what the
messenger will allow.
"""

from chat.communities.roles import Action as CommunityAction
from chat.communities.roles import PermissionRefused
from chat.communities.roles import Role as CommunityRole
from chat.communities.roles import allowed as community_allows
from chat.direct import MAX_INTRO_LENGTH
from chat.identity import format_chat_key
from chat.messenger.config import MAX_TEXT_LENGTH, MessengerConfig
from chat.messenger.facade import Messenger

__all__ = [
    "MAX_INTRO_LENGTH",
    "MAX_TEXT_LENGTH",
    "CommunityAction",
    "CommunityRole",
    "Messenger",
    "MessengerConfig",
    "PermissionRefused",
    "community_allows",
    "format_chat_key",
]
