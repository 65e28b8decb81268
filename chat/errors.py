"""Errors a person can act on.

Every exception that derives from UserError carries a sentence meant for a human; the
CLI and the TUI print that sentence and never a traceback.
"""


class UserError(Exception):
    """A failure whose message is a plain sentence for the user."""

    exit_code = 2


class ConfigError(UserError):
    """The configuration file or a command-line option is invalid."""
