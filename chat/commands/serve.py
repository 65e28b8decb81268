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
from collections.abc import Callable
from typing import TYPE_CHECKING

from chat.config import Config
from chat.errors import UserError
from chat.session import Session, add_network_arguments, messenger_settings, network_flags
from chat.telemetry.client.options import add_telemetry_arguments, telemetry_settings

# The messenger, the API server and the node stack (libp2p, trio) are imported where they are
# used, so `chinwag --help` and the other commands do not pay for them.
if TYPE_CHECKING:
    from chat.api.server import ApiListener
    from chat.messenger import MessengerConfig
    from chat.telemetry.settings import TelemetrySettings
    from storage.store import Store

NAME = "serve"
HELP = "run a headless client for a profile, with a REST API (token printed on start)"

DEFAULT_API_HOST = "127.0.0.1"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api", required=True, metavar="[HOST:]PORT",
        help=f"where the REST API listens (host default {DEFAULT_API_HOST}; port 0 picks a "
        "free one)",
    )  # fmt: skip
    add_network_arguments(parser)
    parser.add_argument(
        "--drop-frames", type=float, default=0.0, metavar="RATE",
        help="fault simulation: lose this share (0-1) of outgoing relay frames",
    )  # fmt: skip
    add_telemetry_arguments(parser)
    parser.add_argument(
        "--timer-scale", type=float, default=1.0, metavar="F",
        help="lab runs: multiply the re-send and store-scan timers by F (0-1; default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--clock-offset", type=float, default=0.0, metavar="SECONDS",
        help="lab runs: the client's clock runs SECONDS ahead (negative: behind) of the "
        "machine's, as on a machine with a wrong clock",
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


def messenger_config_from(args: argparse.Namespace, config: Config) -> MessengerConfig:
    """The node settings from the options (and the fleet and config files); bad ones are
    UserErrors. The same builder as the chat UI's (chat/session.py)."""
    return messenger_settings(config, network_flags(args)).messenger_config()


def _say(name: str, value: str) -> None:
    print(f"{name}: {value}", flush=True)


async def serve(
    profile: str,
    store: Store,
    messenger_config: MessengerConfig,
    listener: ApiListener,
    token: str,
    publish_link: Callable[[str], None] | None = None,
    telemetry: TelemetrySettings | None = None,
) -> None:
    """`publish_link`: keeps the link where `chinwag link` reads it while we hold the
    profile (Session.publish_link)."""
    import trio

    from chat.api.app import ApiApp
    from chat.api.handlers import Handlers
    from chat.api.openapi import document_bytes
    from chat.api.routing import Router
    from chat.api.server import serve_api
    from chat.messenger import Messenger
    from chat.telemetry.client.attach import attach_telemetry
    from storage.aio import AsyncStore

    db = AsyncStore(store)
    messenger = Messenger(store, messenger_config, db=db)
    app = ApiApp(Router(Handlers(messenger).routes()), token, document_bytes())
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with messenger.run(), trio.open_nursery() as nursery:
            await nursery.start(serve_api, app, listener)
            reporting = await attach_telemetry(nursery, telemetry, messenger, db)
            _say("profile", profile)
            _say("chat_key", messenger.identity().chat_key)
            if publish_link is not None:
                publish_link(messenger.identity().contact_link)
            _say("api", listener.url)
            _say("token", token)
            for addr in messenger.listen_addrs():
                _say("listening", addr)
            print("ready", flush=True)
            async for signum in signals:
                log.info("stopping on %s", signal.Signals(signum).name)
                break
            app.close()
            if reporting is not None:
                await reporting.stop()
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
    telemetry = telemetry_settings(args, config)
    if args.timer_scale != 1.0:
        from chat.lab.timers import scaled_timers

        try:
            messenger_config = scaled_timers(messenger_config, args.timer_scale)
        except ValueError as exc:
            raise UserError(f"--timer-scale: {exc}") from None
    if args.clock_offset:
        from chat.lab.timers import skewed_clock

        try:
            messenger_config = skewed_clock(messenger_config, args.clock_offset)
        except ValueError as exc:
            raise UserError(f"--clock-offset: {exc}") from None
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
        if args.telemetry is None:  # no explicit level: the profile's recorded choice counts
            from chat.telemetry.client.profile import with_recorded_choice

            telemetry = with_recorded_choice(telemetry, store)
        try:
            publish = Session(config).publish_link
            trio.run(
                serve, config.profile, store, messenger_config, listener, token, publish, telemetry
            )
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
