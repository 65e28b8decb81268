"""`chinwag link`: print this profile's contact link and its QR code."""

from __future__ import annotations

import argparse
import time

from chat.config import Config
from chat.identity import render_qr
from chat.identity_store import ensure_identity
from chat.unlock import unlock_profile

NAME = "link"
HELP = "print your contact link and its QR code, to share with people you want to chat with"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-qr", action="store_true", help="print only the link")


def run(args: argparse.Namespace, config: Config) -> int:
    with unlock_profile(config) as store:
        identity = ensure_identity(store, time.time())
    link = identity.contact_link()
    if not args.no_qr:
        print(render_qr(link))
        print()
    print(f"{identity.display_name}  ({identity.chat_key_text})")
    print(link)
    return 0
