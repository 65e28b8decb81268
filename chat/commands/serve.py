"""`chinwag serve`: a headless chinwag client for an existing profile, driven over a REST API
(chat/api) — for QA automation, bots and scenario runs.

On start it prints one `name: value` line each, then `ready` (stdout is flushed):

    profile: alice
    chat_key: cw1...
    api: http://127.0.0.1:8080
    token: <the API token>
    listening: /ip4/.../tcp/.../p2p/...     (one line per address)
    ready

and it stops cleanly on SIGINT or SIGTERM: event streams end, the node leaves its peers, the
profile is closed. The passphrase comes from CHINWAG_PASSPHRASE or a prompt.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from typing import TYPE_CHECKING

from multiaddr import Multiaddr

from chat.config import Config
from chat.errors import UserError
from chat.fleet import add_fleet_argument, load_fleet, peer_id_of, resolve_network

# The messenger, the API server and the node stack (libp2p, trio) are imported where they are
# used, so `chinwag --help` and the other commands do not pay for them.
if TYPE_CHECKING:
    from chat.api.server import ApiListener
    from chat.messenger import MessengerConfig
    from storage.store import Store

NAME = "serve"
HELP = "run a headless client for a profile, with a REST API (token printed on start)"

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/0"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api", required=True, metavar="[HOST:]PORT",
        help=f"where the REST API listens (host default {DEFAULT_API_HOST}; port 0 picks a "
        "free one)",
    )  # fmt: skip
    parser.add_argument(
        "--peer", action="append", metavar="MULTIADDR",
        help="peer to keep connected (full multiaddr with /p2p/), repeatable "
        "(default: the config file's network.peers)",
    )  # fmt: skip
    parser.add_argument(
        "--store-peer", action="append", metavar="MULTIADDR",
        help="store node to ask for missed messages, repeatable (default: the peers)",
    )  # fmt: skip
    parser.add_argument(
        "--listen", action="append", metavar="MULTIADDR",
        help=f"address for the node to listen on, repeatable (default {DEFAULT_LISTEN})",
    )  # fmt: skip
    add_fleet_argument(parser)
    parser.add_argument(
        "--drop-frames", type=float, default=0.0, metavar="RATE",
        help="fault simulation: lose this share (0-1) of outgoing relay frames",
    )  # fmt: skip


def parse_api_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPV6]:PORT` or just `PORT` (on 127.0.0.1)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host = DEFAULT_API_HOST
    host = host.removeprefix("[").removesuffix("]") or DEFAULT_API_HOST
    if not port_text.isascii() or not port_text.isdigit() or int(port_text) > 65535:
        raise UserError(
            f"--api {text} must be HOST:PORT or PORT, with a port number 0-65535 "
            "(for example 127.0.0.1:8080)"
        )
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _full_multiaddrs(values: list[str], option: str) -> tuple[str, ...]:
    for value in values:
        if peer_id_of(value) is None:
            raise UserError(f"{option} {value} must be a multiaddr ending in /p2p/<peer id>")
    return tuple(values)


def messenger_config_from(args: argparse.Namespace, config: Config) -> MessengerConfig:
    """The node settings from the options (and the config file); bad ones are UserErrors."""
    from chat.messenger import MessengerConfig
    from chat.waku.relay.faults import RelayFaults

    listen = tuple(args.listen or [DEFAULT_LISTEN])
    for value in listen:
        try:
            Multiaddr(value)
        except Exception:
            raise UserError(f"--listen {value} is not a multiaddr") from None
    fleet = load_fleet(args.fleet) if getattr(args, "fleet", None) else None
    peers = _full_multiaddrs(args.peer, "--peer") if args.peer else ()
    settings = resolve_network(config.network, fleet, peers=peers)
    store_peers = _full_multiaddrs(args.store_peer or [], "--store-peer")
    drop = getattr(args, "drop_frames", 0.0)
    if not 0.0 <= drop <= 1.0:
        raise UserError(f"--drop-frames {drop} must be between 0 and 1")
    return MessengerConfig(
        listen_addrs=listen,
        peers=settings.peers,
        store_peers=tuple(dict.fromkeys((*settings.store_peers, *store_peers))),
        cluster_id=settings.cluster_id,
        shards=settings.shards,
        faults=RelayFaults(drop) if drop else None,
    )


def _say(name: str, value: str) -> None:
    print(f"{name}: {value}", flush=True)


async def serve(
    profile: str,
    store: Store,
    messenger_config: MessengerConfig,
    listener: ApiListener,
    token: str,
) -> None:
    import trio

    from chat.api.app import ApiApp
    from chat.api.handlers import Handlers
    from chat.api.openapi import document_bytes
    from chat.api.routing import Router
    from chat.api.server import serve_api
    from chat.messenger import Messenger

    messenger = Messenger(store, messenger_config)
    app = ApiApp(Router(Handlers(messenger).routes()), token, document_bytes())
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with messenger.run(), trio.open_nursery() as nursery:
            await nursery.start(serve_api, app, listener)
            _say("profile", profile)
            _say("chat_key", messenger.identity().chat_key)
            _say("api", listener.url)
            _say("token", token)
            for addr in messenger.listen_addrs():
                _say("listening", addr)
            print("ready", flush=True)
            async for signum in signals:
                log.info("stopping on %s", signal.Signals(signum).name)
                break
            app.close()
    print("chinwag serve stopped", flush=True)


def run(args: argparse.Namespace, config: Config) -> int:
    import trio

    from chat.api.auth import load_or_create_token
    from chat.api.server import bind_api
    from chat.logs import register_secret
    from chat.unlock import unlock_profile

    if config.log_level != "DEBUG":
        # py-libp2p warns about every refused protocol and peer churn; that is normal here.
        logging.getLogger("libp2p").setLevel(logging.ERROR)
    host, port = parse_api_address(args.api)
    messenger_config = messenger_config_from(args, config)
    with unlock_profile(config) as store:
        token = load_or_create_token(config.profile_dir)
        register_secret(token)
        listener = bind_api(host, port)
        if not is_loopback(host):
            print(
                f"chinwag: warning: the API on {listener.url} is reachable from other machines, "
                "and plain HTTP sends the token unencrypted.",
                file=sys.stderr,
            )
        try:
            trio.run(serve, config.profile, store, messenger_config, listener, token)
        except BaseExceptionGroup as group:
            # A UserError from inside a nursery (the node cannot listen, ...) is still a sentence.
            user_errors, _ = group.split(UserError)
            if user_errors is None:
                raise
            raise _first(user_errors) from None
        finally:
            listener.close()
    return 0


def _first(group: BaseExceptionGroup[UserError]) -> UserError:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error
