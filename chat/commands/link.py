"""`chinwag link`: print this profile's contact link and its QR code.

The link is public, so this works while the chat screen (or `chinwag serve`) has the profile
open: that process publishes its current link in the profile directory
(`Session.publish_link`), and this reads it there without the lock or the passphrase. With
the profile free, it unlocks the profile as before (which may rotate the link's fallback key,
a write) and publishes what it printed."""

from __future__ import annotations

import argparse
import time

from chat.config import Config
from chat.errors import UserError
from chat.identity import FALLBACK_ROTATION, ContactLink, IdentityError, render_qr
from chat.identity_store import ensure_identity
from chat.session import ProfileInUse, Session
from chat.unlock import unlock_profile

NAME = "link"
HELP = "print your contact link and its QR code, to share with people you want to chat with"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-qr", action="store_true", help="print only the link")


def run(args: argparse.Namespace, config: Config) -> int:
    session = Session(config)
    try:
        with unlock_profile(config) as store:
            identity = ensure_identity(store, time.time())
            link = identity.contact_link()
            session.publish_link(link)
        name, chat_key = identity.display_name, identity.chat_key_text
    except ProfileInUse:
        parsed, link = published(session)
        name, chat_key = parsed.display_name, parsed.chat_key_text
    if not args.no_qr:
        print(render_qr(link))
        print()
    print(f"{name}  ({chat_key})")
    print(link)
    return 0


def published(session: Session) -> tuple[ContactLink, str]:
    """The link the process holding the profile published, if it still works."""
    link = session.published_link()
    problem = "has not published your contact link"
    parsed = None
    if link is not None:
        try:
            parsed = ContactLink.parse(link)
        except IdentityError:
            problem = "published a damaged contact link"
    # The fallback key stays usable for one rotation after the next one replaced it.
    if parsed is not None and time.time() - parsed.fallback_created_at > 2 * FALLBACK_ROTATION:
        problem, parsed = "published an out-of-date contact link", None
    if parsed is None or link is None:
        raise UserError(
            f"profile '{session.profile}' is in use by another chinwag process that {problem}; "
            "press F4 in its chat screen, or quit it first."
        )
    return parsed, link
