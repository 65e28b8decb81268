"""The base of every error whose message is a sentence for a person.

It is defined here, in the lowest layer that raises one (a node key file that cannot be
read), so the node stack imports nothing from the rest of `chat/`; `chat.errors` re-exports
it for everything above."""

from __future__ import annotations


class UserError(Exception):
    """A failure whose message is a plain sentence for the user."""

    exit_code = 2
