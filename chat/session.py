"""A profile as every face opens it, and the one builder of the messenger's settings.

Faces (the TUI, `chinwag serve`, the CLI) open profiles here and never reach into
`storage/` themselves:

    settings = messenger_settings(config, network_flags(args))  # flags > fleet > config
    session = Session(config, settings)
    profile = session.unlock(passphrase)       # blocks: the key derivation takes ~0.5 s
    messenger = profile.messenger(session.messenger_config())
    ...
    profile.close()                            # closes the database, releases the lock

While a profile is open its advisory lock is held: two processes writing one profile would
fork its Olm state (each ratchets sessions and rotates keys the other never sees).

Nothing here imports libp2p or Textual at import time: a face checks its flags and unlocks
before the node stack is loaded. `MessengerSettings.messenger_config()` and
`OpenProfile.messenger()` import `chat.messenger` when they are called.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from multiaddr import Multiaddr

from chat.config import Config
from chat.errors import UserError
from chat.fleet import dial_problem, load_fleet, peer_id_of, resolve_network
from chat.identity import MAX_DISPLAY_NAME, clean_link, render_qr, validate_display_name
from chat.logs import register_secret
from storage.errors import ProfileNotFound, StorageError
from storage.profiles import Profiles

if TYPE_CHECKING:
    from chat import events as ev
    from chat.messenger import Messenger, MessengerConfig
    from chat.telemetry.client.profile import ProfileTelemetry, TelemetryReport
    from storage.aio import AsyncStore
    from storage.kdf import KdfParams
    from storage.store import Store

# What a face shows or checks of a profile, so that ui/ needs no import below the core.
__all__ = [
    "DEFAULT_LISTEN",
    "LOCK_FILE_NAME",
    "MAX_DISPLAY_NAME",
    "ChatSource",
    "MessengerSettings",
    "NetworkFlags",
    "OpenProfile",
    "ProfileInUse",
    "ProfileLock",
    "ProfileTelemetry",
    "Session",
    "TelemetryReport",
    "add_network_arguments",
    "clean_link",
    "messenger_settings",
    "network_flags",
    "profile_lock",
    "render_qr",
    "validate_display_name",
]

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/0"
LOCK_FILE_NAME = "lock"
"""In the profile directory; empty. The lock is the flock on it, not the file's existence,
so a crashed process never leaves the profile locked."""
LINK_FILE_NAME = "contact-link"
"""In the profile directory: the contact link as the process holding the lock last made it
(one line). The link is public (keys and display name, signed), so `chinwag link` reads it
while another chinwag has the profile open, without the lock or the passphrase."""
MAX_LINK_FILE = 4096
"""Bytes read of the link file at most (a link is about 260 characters)."""


# ---- the messenger's settings ------------------------------------------------------------
@dataclass(frozen=True)
class NetworkFlags:
    """What the command line said about the network (empty: it said nothing)."""

    peers: tuple[str, ...] = ()
    store_peers: tuple[str, ...] = ()
    listen: tuple[str, ...] = ()
    fleet: Path | None = None
    drop_frames: float = 0.0
    light: bool = False


def add_network_arguments(
    parser: argparse.ArgumentParser, *, prefix: str = "", suppress: bool = False
) -> None:
    """`--peer`, `--store-peer`, `--listen` and `--fleet`, as every messenger face takes them.

    `prefix` names where they land in the namespace (`network_flags` reads the same prefix);
    `suppress` leaves them out of the namespace unless given, so that a subcommand's parser
    does not overwrite the same option given before the subcommand."""
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument(
        "--peer", action="append", metavar="MULTIADDR", dest=f"{prefix}peer", **default,
        help="peer to keep connected (full multiaddr with /p2p/), repeatable "
        "(adds to the fleet's; default: the config file's network.peers)",
    )  # fmt: skip
    parser.add_argument(
        "--store-peer", action="append", metavar="MULTIADDR", dest=f"{prefix}store_peer",
        **default, help="store node to ask for missed messages, repeatable (default: the peers)",
    )  # fmt: skip
    parser.add_argument(
        "--listen", action="append", metavar="MULTIADDR", dest=f"{prefix}listen", **default,
        help=f"address for the node to listen on, repeatable (default {DEFAULT_LISTEN})",
    )  # fmt: skip
    parser.add_argument(
        "--fleet", type=Path, metavar="FILE", dest=f"{prefix}fleet", **default,
        help="fleet file (TOML) naming the cluster, bootstrap peers and service nodes "
        "(over the config file's [network])",
    )  # fmt: skip
    parser.add_argument(
        "--light", action="store_true", dest=f"{prefix}light", **default,
        help="light mode for weak links: no relay; receive by filter, send by light push, "
        "catch up from store, all from the peers (service nodes); default: the config "
        "file's network.mode",
    )  # fmt: skip


def network_flags(args: argparse.Namespace, *, prefix: str = "") -> NetworkFlags:
    """The options `add_network_arguments` added (with the same prefix), as given."""

    def values(name: str) -> tuple[str, ...]:
        return tuple(getattr(args, f"{prefix}{name}", None) or ())

    return NetworkFlags(
        peers=values("peer"),
        store_peers=values("store_peer"),
        listen=values("listen"),
        fleet=getattr(args, f"{prefix}fleet", None),
        drop_frames=getattr(args, "drop_frames", 0.0),
        light=bool(getattr(args, f"{prefix}light", False)),
    )


@dataclass(frozen=True)
class MessengerSettings:
    """The messenger's network settings, merged and checked; no libp2p needed to hold them."""

    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    peers: tuple[str, ...] = ()
    store_peers: tuple[str, ...] = ()
    cluster_id: int | None = None
    """None: the messenger's default."""
    shards: tuple[int, ...] = ()
    """Empty: the messenger's default."""
    drop_frames: float = 0.0
    fleet_name: str = ""
    light: bool = False

    def messenger_config(self) -> MessengerConfig:
        """The messenger's config (imports chat.messenger, and libp2p under it)."""
        from chat.messenger import MessengerConfig
        from chat.messenger.config import SCAN_JITTER
        from chat.reliability.store_checks import StoreCheckParams
        from chat.waku.relay.faults import RelayFaults

        network: dict[str, Any] = {}
        if self.cluster_id is not None:
            network["cluster_id"] = self.cluster_id
        if self.shards:
            network["shards"] = self.shards
        return MessengerConfig(
            listen_addrs=self.listen,
            peers=self.peers,
            store_peers=self.store_peers,
            faults=RelayFaults(self.drop_frames) if self.drop_frames else None,
            light=self.light,
            store_checks=StoreCheckParams(scan_jitter=SCAN_JITTER),
            **network,
        )


def messenger_settings(config: Config, flags: NetworkFlags | None = None) -> MessengerSettings:
    """The one builder every face uses: command-line flags, then the fleet file, then the
    config file, then the defaults (peer lists add up; see chat/fleet.py). Bad values are
    UserErrors that name the option (or the config file), raised before anything starts:
    every face calls this first (the TUI, `serve`, and `info`, which checks the config)."""
    flags = flags or NetworkFlags()
    _full_multiaddrs(config.network.peers, f"{config.config_file}: [network] peers:")
    listen = flags.listen or (DEFAULT_LISTEN,)
    for value in listen:
        try:
            Multiaddr(value)
        except Exception:
            raise UserError(f"--listen {value} is not a multiaddr") from None
    fleet = load_fleet(flags.fleet) if flags.fleet is not None else None
    peers = _full_multiaddrs(flags.peers, "--peer")
    network = resolve_network(config.network, fleet, peers=peers)
    store_peers = _full_multiaddrs(flags.store_peers, "--store-peer")
    light = flags.light or config.network.mode == "light"
    if light and not network.peers:
        raise UserError(
            "light mode needs service nodes: give --peer (or a fleet, or [network] peers)"
        )
    if not 0.0 <= flags.drop_frames <= 1.0:
        raise UserError(f"--drop-frames {flags.drop_frames} must be between 0 and 1")
    return MessengerSettings(
        listen=listen,
        peers=network.peers,
        store_peers=tuple(dict.fromkeys((*network.store_peers, *store_peers))),
        cluster_id=network.cluster_id,
        shards=network.shards,
        drop_frames=flags.drop_frames,
        fleet_name=network.fleet_name,
        light=light,
    )


def _full_multiaddrs(values: tuple[str, ...], option: str) -> tuple[str, ...]:
    for value in values:
        if peer_id_of(value) is None:
            raise UserError(f"{option} {value} must be a multiaddr ending in /p2p/<peer id>")
        if (problem := dial_problem(value)) is not None:
            raise UserError(f"{option} {value} {problem}")
    return values


# ---- the profile's lock ------------------------------------------------------------------
class ProfileInUse(UserError):
    """Another chinwag process holds the profile's lock."""


class ProfileLock:
    """The profile's advisory lock, held until `release()` (or the process ends)."""

    def __init__(self, directory: Path, name: str) -> None:
        """Take it, or raise a UserError at once: no such profile, or in use elsewhere."""
        try:
            fd = os.open(directory / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            raise UserError(str(ProfileNotFound(name))) from None
        except OSError as exc:
            raise UserError(
                f"cannot lock profile '{name}' in {directory}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ProfileInUse(
                f"profile '{name}' is in use by another chinwag process; quit that one first."
            ) from None
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


@contextmanager
def profile_lock(directory: Path, name: str) -> Iterator[None]:
    """Hold the profile's lock for the block (see ProfileLock)."""
    lock = ProfileLock(directory, name)
    try:
        yield
    finally:
        lock.release()


# ---- opening a profile -------------------------------------------------------------------
class ChatSource(Protocol):
    """Where a face reads chats and messages: the messenger, or before it runs the
    profile's database alone (`OpenProfile.reader()`)."""

    async def chats(self) -> list[ev.ChatView]: ...

    async def messages(
        self,
        chat_id: str,
        *,
        limit: int = 50,
        before: str | None = None,
        after: str | None = None,
    ) -> list[ev.MessageView]: ...

    async def message(self, message_id: str) -> ev.MessageView: ...

    async def search(
        self, query: str, *, chat_id: str | None = None, limit: int = 20
    ) -> list[ev.SearchResultView]: ...


class OpenProfile:
    """An unlocked profile: its database, open, and its lock, held until `close()`."""

    def __init__(self, name: str, store: Store, lock: ProfileLock, *, new: bool) -> None:
        from storage.aio import AsyncStore

        self.name = name
        self.store = store
        self.new = new
        """Created in this session (a face shows the new contact link)."""
        self.db: AsyncStore = AsyncStore(store)
        """The database's one async runner: the messenger and the early reads share it
        (they share one connection)."""
        self._lock = lock
        self._closed = False

    def reader(self) -> ChatSource:
        """Chats and messages from the database alone, before the messenger is up."""
        from chat.history import StoredChats

        return StoredChats(self.db)

    def messenger(self, config: MessengerConfig) -> Messenger:
        """The messenger on this profile (run it with `async with messenger.run()`)."""
        from chat.messenger import Messenger

        return Messenger(self.store, config, db=self.db)

    def close(self) -> None:
        """Close the database, then release the lock; once."""
        if self._closed:
            return
        self._closed = True
        try:
            self.store.close()
        finally:
            self._lock.release()

    def __enter__(self) -> OpenProfile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Session:
    """One profile of one data directory, and the messenger settings to run it with. Every
    method that touches the profile blocks (run it on a thread from async code)."""

    config: Config
    settings: MessengerSettings | None = None
    """None: from the config file alone."""
    override: MessengerConfig | None = None
    """A complete messenger config to use instead of `settings` (tests, benchmarks)."""
    kdf: Callable[[], KdfParams] | None = None
    """The key derivation's parameters for a new profile (default: storage's)."""
    clock: Callable[[], float] = time.time
    profiles: Profiles = field(init=False)
    _early: tuple[str, Future[bytes]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.profiles = Profiles(self.config.profiles_dir, on_key=register_secret)

    @property
    def profile(self) -> str:
        return self.config.profile

    def exists(self) -> bool:
        return self.profiles.exists(self.profile)

    def messenger_config(self) -> MessengerConfig:
        """What the messenger runs with (imports chat.messenger)."""
        if self.override is not None:
            return self.override
        settings = self.settings or messenger_settings(self.config)
        return settings.messenger_config()

    def telemetry(self, opened: OpenProfile) -> ProfileTelemetry:
        """The open profile's opt-in telemetry: consent, the client, the "what we send" view
        (a ConfigError for a bad CHINWAG_TELEMETRY; `check_telemetry` says so earlier)."""
        from chat.telemetry.client.options import effective
        from chat.telemetry.client.profile import ProfileTelemetry

        return ProfileTelemetry(effective(self.config), opened.db)

    def check_telemetry(self) -> None:
        """The telemetry settings can be used (before a face starts): else a ConfigError."""
        from chat.telemetry.client.options import effective

        effective(self.config)

    def derive_early(self, passphrase: str) -> None:
        """Start deriving this passphrase's key on a thread now (Argon2id runs without the
        GIL, so it overlaps imports); `unlock(passphrase)` then waits for it instead of
        starting over. Its errors surface there, as the same sentences."""
        future: Future[bytes] = Future()

        def derive() -> None:
            try:
                future.set_result(self.profiles.derive_key(self.profile, passphrase))
            except BaseException as exc:  # handed over, not lost: unlock raises it
                future.set_exception(exc)

        threading.Thread(target=derive, name="derive-key", daemon=True).start()
        self._early = (passphrase, future)

    def publish_link(self, link: str) -> bool:
        """Keep `link` in the profile directory for `published_link` (call it while holding
        the lock, whenever the link changes). Written whole or not at all; a failure (a
        read-only directory) is logged, not raised: the link is a convenience for others."""
        directory = self.profiles.directory(self.profile)
        temporary = directory / f".{LINK_FILE_NAME}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(link + "\n")
            os.replace(temporary, directory / LINK_FILE_NAME)
        except OSError as exc:
            log.warning("could not publish the contact link in %s: %s", directory, exc)
            return False
        return True

    def published_link(self) -> str | None:
        """The link the profile's current (or last) holder published; None if there is none.
        Not checked here: the reader parses it (chat.identity.ContactLink.parse)."""
        path = self.profiles.directory(self.profile) / LINK_FILE_NAME
        try:
            with path.open("rb") as file:
                data = file.read(MAX_LINK_FILE)
        except OSError:
            return None
        text = data.decode("ascii", errors="replace").strip()
        return text or None

    def lock(self) -> ProfileLock:
        """Take the profile's lock (a UserError if there is no such profile or another
        process has it): the CLI does so before it asks for the passphrase."""
        try:
            directory = self.profiles.files(self.profile).directory
        except StorageError as exc:
            raise UserError(str(exc)) from None
        return ProfileLock(directory, self.profile)

    def unlock(self, passphrase: str, *, lock: ProfileLock | None = None) -> OpenProfile:
        """Open the profile with its passphrase, or a UserError that says why not (no such
        profile, in use, wrong passphrase). `lock`: already taken; else taken here. On
        failure the lock is released."""
        held = lock if lock is not None else self.lock()
        try:
            store = self.profiles.open(self.profile, self._key(passphrase))
        except StorageError as exc:
            held.release()
            raise UserError(str(exc)) from None
        except BaseException:
            held.release()
            raise
        return OpenProfile(self.profile, store, held, new=False)

    def _key(self, passphrase: str) -> bytes:
        early, self._early = self._early, None  # used once: a retyped one derives afresh
        if early is not None and early[0] == passphrase:
            return early[1].result()
        return self.profiles.derive_key(self.profile, passphrase)

    def create(self, display_name: str, passphrase: str) -> OpenProfile:
        """Create the profile with its chat identity, open and locked; or a UserError."""
        from chat.identity_store import ensure_identity

        try:
            name = validate_display_name(display_name)
        except ValueError as exc:
            raise UserError(f"display name: {exc}") from None
        now = self.clock()
        kdf = self.kdf() if self.kdf is not None else None
        try:
            store = self.profiles.create(
                self.profile, passphrase, display_name=name, now=int(now * 1000), kdf=kdf
            )
        except StorageError as exc:
            raise UserError(str(exc)) from None
        try:
            ensure_identity(store, now)
            held = self.lock()
        except BaseException:
            store.close()
            raise
        return OpenProfile(self.profile, store, held, new=True)
