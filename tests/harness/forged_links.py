"""Contact links a misbehaving member could make: signed with their own chat key, but naming
an Olm identity key that is not theirs (a link proves only its chat key)."""

from __future__ import annotations

import base64

from chat.identity import LINK_SCHEME, LINK_SIGNATURE_CONTEXT, LINK_VERSION, Identity
from chat.proto import contact_pb2


def link_claiming(identity: Identity, identity_key: bytes) -> str:
    """`identity`'s contact link, validly signed, with someone else's Olm identity key."""
    body = contact_pb2.ContactLinkBody(
        version=LINK_VERSION,
        chat_key=identity.chat_key,
        identity_key=identity_key,
        fallback_key=identity.fallback_key,
        fallback_created_at=int(identity.fallback_created_at),
        display_name=identity.display_name,
    ).SerializeToString()
    outer = contact_pb2.ContactLink(
        body=body, signature=identity.sign(LINK_SIGNATURE_CONTEXT + body)
    )
    return LINK_SCHEME + base64.urlsafe_b64encode(outer.SerializeToString()).decode().rstrip("=")
