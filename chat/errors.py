"""Errors a person can act on.

Every exception that derives from UserError carries a sentence meant for a human; the
CLI and the TUI print that sentence and never a traceback. `UserError` itself is defined in
the node stack (chat/waku/errors.py), which raises some and imports nothing above it.
"""

from chat.waku.errors import UserError

__all__ = ["ConfigError", "UserError"]


class ConfigError(UserError):
    """The configuration file or a command-line option is invalid."""
