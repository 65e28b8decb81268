"""Typed storage failures.

Every error derives from StorageError and carries a sentence a person can act on, so the CLI
and the TUI can print it as it is. Nothing here knows about chat/ or ui/.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every failure the storage layer reports."""


class EmptyPassphrase(StorageError):
    def __init__(self) -> None:
        super().__init__("the passphrase is empty; type at least one character.")


class WrongPassphrase(StorageError):
    def __init__(self, profile: str) -> None:
        super().__init__(f"wrong passphrase for profile '{profile}'.")


class ProfileNotFound(StorageError):
    def __init__(self, profile: str) -> None:
        super().__init__(f"there is no profile named '{profile}'.")


class ProfileExists(StorageError):
    def __init__(self, profile: str) -> None:
        super().__init__(f"a profile named '{profile}' already exists.")


class DatabaseCorrupt(StorageError):
    """The file is truncated, damaged or missing although its key file says it should exist."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(
            f"{what} is damaged ({detail}); restore it from a backup or create a new profile."
        )


class SchemaTooNew(StorageError):
    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"this profile was written by a newer chinwag (schema version {found}, this one "
            f"understands up to {supported}); upgrade chinwag to open it."
        )
        self.found = found
        self.supported = supported


class StorageFull(StorageError):
    def __init__(self) -> None:
        super().__init__(
            "the disk is full, so the last change was not saved; free some space and try again."
        )


class StorageBusy(StorageError):
    def __init__(self) -> None:
        super().__init__("the profile is in use by another chinwag process; close it first.")
