"""`chinwag profile create|list|show|passwd|delete`: manage encrypted profiles.

Passphrases come from `CHINWAG_PASSPHRASE` (and `CHINWAG_NEW_PASSPHRASE` for the new one in
`passwd`) or from a prompt. Storage errors become one sentence on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chat.config import PASSPHRASE_ENV, Config, passphrase_from_env, validate_profile_name
from chat.errors import UserError
from chat.identity_store import ensure_identity
from chat.logs import register_secret
from chat.session import profile_lock
from chat.unlock import ask_passphrase, prompt_passphrase
from storage.errors import StorageError
from storage.profiles import Profiles

NAME = "profile"
HELP = "create, list, show, re-key or delete encrypted profiles"
USES_PROFILE = False

NEW_PASSPHRASE_ENV = "CHINWAG_NEW_PASSPHRASE"


class PassphraseMismatch(UserError):
    def __init__(self) -> None:
        super().__init__("the two passphrases differ; nothing was changed.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a profile")
    create.add_argument("name", nargs="?", help="profile name (default: --profile)")
    create.add_argument("--display-name", required=True, help="the name others see")
    actions.add_parser("list", help="list the profiles in the data dir")
    for action, text in (
        ("show", "unlock a profile and show its display name, creation time and size"),
        ("passwd", "change a profile's passphrase"),
        ("delete", "delete a profile and everything in it (no undo)"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("name", nargs="?", help="profile name (default: --profile)")
        if action == "delete":
            sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _ask_new(prompt: str, env: str) -> str:
    """A new passphrase: from the environment, or typed twice."""
    from_env = passphrase_from_env(env)
    if from_env is not None:
        register_secret(from_env)
        return from_env
    first = prompt_passphrase(prompt, env)
    if prompt_passphrase("Repeat it: ", env) != first:
        raise PassphraseMismatch()
    return first


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _when(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@contextmanager
def _plain_errors() -> Iterator[None]:
    try:
        yield
    except StorageError as exc:
        raise UserError(str(exc)) from None


def _create(profiles: Profiles, name: str, args: argparse.Namespace) -> int:
    if profiles.exists(name):
        raise UserError(f"a profile named '{name}' already exists.")
    passphrase = _ask_new(f"New passphrase for '{name}': ", PASSPHRASE_ENV)
    now = time.time()
    store = profiles.create(name, passphrase, display_name=args.display_name, now=int(now * 1000))
    with store:
        identity = ensure_identity(store, now)
    print(f"created profile '{name}' ({profiles.directory(name)})")
    print(f"your chat key: {identity.chat_key_text}")
    print("There is no way to recover a lost passphrase: keep it somewhere safe.")
    return 0


def _show(profiles: Profiles, name: str) -> int:
    files = profiles.files(name)
    key = profiles.derive_key(name, ask_passphrase(f"Passphrase for '{name}': "))
    store = profiles.open(name, key)
    try:
        display, created, schema = (
            store.meta.display_name,
            store.meta.created_at,
            store.db.schema_version,
        )
    finally:
        store.close()
    print(f"profile:      {name}")
    print(f"display name: {display}")
    print(f"created:      {_when(created)}")
    print(f"database:     {files.database} ({_size(files.database_bytes())}, schema {schema})")
    return 0


def _passwd(profiles: Profiles, name: str) -> int:
    profiles.files(name)  # fail early, before any prompt, if the profile does not exist
    old = ask_passphrase(f"Current passphrase for '{name}': ")
    profiles.derive_key(name, old)  # a wrong passphrase fails before we ask for the new one
    new = _ask_new(f"New passphrase for '{name}': ", NEW_PASSPHRASE_ENV)
    profiles.change_passphrase(name, old, new)
    print(f"changed the passphrase of '{name}'")
    return 0


def _delete(profiles: Profiles, name: str, yes: bool) -> int:
    profiles.files(name)
    if not yes:
        if not sys.stdin.isatty():
            raise UserError("refusing to delete without confirmation; add --yes.")
        answer = input(f"This deletes '{name}' and all its messages for good. Type its name: ")
        if answer.strip() != name:
            print("not deleted")
            return 1
    profiles.delete(name)
    print(f"deleted profile '{name}'")
    return 0


def run(args: argparse.Namespace, config: Config) -> int:
    profiles = Profiles(config.profiles_dir, on_key=register_secret)
    if args.action == "list":
        names = profiles.names()
        if not names:
            print(f"no profiles in {config.profiles_dir}")
        for name in names:
            try:
                detail = _size(profiles.files(name).database_bytes())
            except StorageError as exc:  # one damaged profile must not hide the others
                detail = f"unusable: {exc}"
            print(f"{name}\t{detail}")
        return 0
    name = validate_profile_name(args.name or config.profile)
    handlers: dict[str, Callable[[], int]] = {
        "create": lambda: _create(profiles, name, args),
        "show": lambda: _show(profiles, name),
        "passwd": lambda: _passwd(profiles, name),
        "delete": lambda: _delete(profiles, name, args.yes),
    }
    with _plain_errors():
        if args.action == "create":
            return handlers[args.action]()
        profiles.files(name)  # no such profile: say so before anything else
        # Re-keying or deleting a profile another chinwag has open would pull the database
        # from under it; even `show` waits its turn rather than read half-written state.
        with profile_lock(profiles.directory(name), name):
            return handlers[args.action]()
