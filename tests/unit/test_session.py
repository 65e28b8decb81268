"""chat/session.py: the one builder of the messenger's settings (flags > fleet > config, the
same for `chinwag serve` and the chat UI, before or after `tui`), and a profile opened,
created, unlocked and locked on real SQLCipher files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chat.cli import build_parser, main
from chat.commands import tui
from chat.commands.serve import messenger_config_from
from chat.config import Config, NetworkConfig, load_config
from chat.errors import UserError
from chat.session import (
    LINK_FILE_NAME,
    MessengerSettings,
    NetworkFlags,
    ProfileInUse,
    Session,
    messenger_settings,
    network_flags,
)
from storage.kdf import KdfParams
from storage.repositories.conversations import Conversation

A = "/ip4/192.0.2.10/tcp/60000/p2p/16Uiu2HAmCz7rRsmWvRr3cf1HmMEQDNYxMeuC8EsgHGdZTvXqSEzM"
B = "/dns4/store.example.org/tcp/60000/p2p/16Uiu2HAkyCxHMuVcXAGuKtH1GmzKHcCFuhYXqb7uGAiFwZ3LuYqj"
C = "/ip4/192.0.2.11/tcp/60000/p2p/16Uiu2HAm4v86W3bmT1BiH6oSPzcsSr24iDQpSN5Qa992BCjjwgrD"
PASSPHRASE = "correct horse battery staple"


def config_with(tmp_path: Path, network: NetworkConfig) -> Config:
    return Config(config_file=tmp_path / "config.toml", data_dir=tmp_path / "data", network=network)


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(
        f'cluster_id = 9\nshards = [3]\nbootstrap = ["{A}"]\n\n[services]\nstore = ["{B}"]\n'
    )
    return path


def test_the_config_file_alone(tmp_path: Path) -> None:
    config = config_with(tmp_path, NetworkConfig(cluster_id=7, shards=(0,), peers=(C,)))
    assert messenger_settings(config) == MessengerSettings(
        listen=("/ip4/0.0.0.0/tcp/0",), peers=(C,), cluster_id=7, shards=(0,)
    )


def test_the_fleet_over_the_config_file_and_flags_over_both(tmp_path: Path, fleet: Path) -> None:
    config = config_with(tmp_path, NetworkConfig(cluster_id=7, shards=(0,), peers=(C,)))
    from_fleet = messenger_settings(config, NetworkFlags(fleet=fleet))
    assert (from_fleet.cluster_id, from_fleet.shards) == (9, (3,))
    assert from_fleet.peers == (A, B)  # the config file's peer is not used with a fleet
    assert from_fleet.store_peers == (B,)
    flagged = messenger_settings(
        config,
        NetworkFlags(fleet=fleet, peers=(C,), store_peers=(A,), listen=("/ip4/127.0.0.1/tcp/0",)),
    )
    assert flagged.peers == (A, B, C)  # a --peer joins the fleet's
    assert flagged.store_peers == (B, A)
    assert flagged.listen == ("/ip4/127.0.0.1/tcp/0",)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (NetworkFlags(listen=("nonsense",)), "--listen nonsense is not a multiaddr"),
        (NetworkFlags(peers=("/ip4/1.2.3.4/tcp/1",)), "must be a multiaddr ending in /p2p/"),
        (NetworkFlags(store_peers=("/ip4/1.2.3.4/tcp/1",)), "--store-peer /ip4/1.2.3.4/tcp/1"),
        (NetworkFlags(fleet=Path("/nonexistent/fleet.toml")), "does not exist"),
        (NetworkFlags(drop_frames=2.0), "--drop-frames 2.0 must be between 0 and 1"),
    ],
)
def test_bad_flags_are_sentences(tmp_path: Path, flags: NetworkFlags, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        messenger_settings(config_with(tmp_path, NetworkConfig()), flags)


PEER_ID = "16Uiu2HAmCz7rRsmWvRr3cf1HmMEQDNYxMeuC8EsgHGdZTvXqSEzM"


@pytest.mark.parametrize(
    "address",
    [
        "/ip4/127.0.0.1/tcp/60000",  # no peer id: accepted by `info`, once
        f"/p2p/{PEER_ID}",  # no host to dial
        f"/ip4/127.0.0.1/udp/60000/quic-v1/p2p/{PEER_ID}",  # a transport we do not speak
        f"/ip4/127.0.0.1/p2p/{PEER_ID}",  # no port
    ],
)
def test_a_peer_chinwag_cannot_dial_is_a_sentence_before_anything_starts(
    tmp_path: Path, address: str
) -> None:
    """Issue 15 item 6: one check, in the one settings builder every face calls first."""
    for flags in (NetworkFlags(peers=(address,)), NetworkFlags(store_peers=(address,))):
        with pytest.raises(UserError, match=re.escape(address)) as caught:
            messenger_settings(config_with(tmp_path, NetworkConfig()), flags)
        assert "/p2p/" in str(caught.value) and "\n" not in str(caught.value)
    config = config_with(tmp_path, NetworkConfig(peers=(address,)))
    with pytest.raises(UserError, match=re.escape(f"{config.config_file}: [network] peers:")):
        messenger_settings(config)
    # Named on the command line too, the config file's peer is still checked.
    with pytest.raises(UserError, match=re.escape(address)):
        messenger_settings(config, NetworkFlags(peers=(f"/ip4/10.0.0.1/tcp/1/p2p/{PEER_ID}",)))


@pytest.mark.parametrize(
    "address",
    [
        f"/ip4/192.0.2.1/tcp/60000/p2p/{PEER_ID}",
        f"/ip6/::1/tcp/60000/p2p/{PEER_ID}",
        f"/dns4/boot.example.org/tcp/60000/p2p/{PEER_ID}",
        f"/dns/boot.example.org/tcp/8000/ws/p2p/{PEER_ID}",
        f"/dns6/boot.example.org/tcp/443/wss/p2p/{PEER_ID}",
    ],
)
def test_addresses_chinwag_can_dial_are_taken(tmp_path: Path, address: str) -> None:
    settings = messenger_settings(config_with(tmp_path, NetworkConfig(peers=(address,))))
    assert settings.peers == (address,)


def ui_flags(argv: list[str]) -> NetworkFlags:
    args = build_parser().parse_args(argv)
    assert getattr(args, "_module", tui) is tui
    return network_flags(args, prefix=tui.PREFIX)


def test_the_chat_ui_takes_the_options_before_any_command_or_after_tui(fleet: Path) -> None:
    assert ui_flags(["--fleet", str(fleet), "--peer", C]) == NetworkFlags(peers=(C,), fleet=fleet)
    assert ui_flags(["tui", "--fleet", str(fleet), "--store-peer", A]) == NetworkFlags(
        store_peers=(A,), fleet=fleet
    )
    # Given before `tui`, kept: the subcommand's parser does not overwrite them.
    both = ui_flags(["--fleet", str(fleet), "tui", "--listen", "/ip4/127.0.0.1/tcp/0"])
    assert both == NetworkFlags(listen=("/ip4/127.0.0.1/tcp/0",), fleet=fleet)
    assert ui_flags([]) == NetworkFlags()


def test_serve_and_the_chat_ui_build_the_same_settings(tmp_path: Path, fleet: Path) -> None:
    options = ["--fleet", str(fleet), "--peer", C, "--store-peer", A]
    config = load_config(data_dir=tmp_path)
    serve_args = build_parser().parse_args(["serve", "--api", "0", *options])
    served = messenger_config_from(serve_args, config)
    shown = Session(config, messenger_settings(config, ui_flags(options))).messenger_config()
    for name in ("listen_addrs", "peers", "store_peers", "cluster_id", "shards"):
        assert getattr(shown, name) == getattr(served, name), name
    assert (shown.cluster_id, shown.peers) == (9, (A, B, C))


def test_light_mode_from_the_flag_or_the_config_file_and_only_with_service_nodes(
    tmp_path: Path,
) -> None:
    relay = config_with(tmp_path, NetworkConfig(peers=(C,)))
    assert not messenger_settings(relay).light
    assert messenger_settings(relay, NetworkFlags(light=True)).messenger_config().light
    light = config_with(tmp_path, NetworkConfig(peers=(C,), mode="light"))
    assert messenger_settings(light).messenger_config().light
    alone = config_with(tmp_path, NetworkConfig(mode="light"))
    with pytest.raises(UserError, match="light mode needs service nodes"):
        messenger_settings(alone)
    assert ui_flags(["--light", "--peer", C]) == NetworkFlags(peers=(C,), light=True)
    assert ui_flags(["tui", "--light"]) == NetworkFlags(light=True)
    serve_args = build_parser().parse_args(["serve", "--api", "0", "--light", "--peer", C])
    assert messenger_config_from(serve_args, load_config(data_dir=tmp_path)).light


def test_ui_options_before_another_command_are_refused(
    tmp_path: Path, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--data-dir", str(tmp_path), "--fleet", str(fleet), "node"])
    assert code == 2
    assert capsys.readouterr().err == (
        "chinwag: --fleet before a command is for the chat UI; put it after 'node' "
        "(chinwag node --help)\n"
    )


# ---- the profile -------------------------------------------------------------------------
def cheap_kdf() -> KdfParams:
    return KdfParams.fresh(opslimit=1, memlimit=8192)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    config = Config(config_file=tmp_path / "config.toml", data_dir=tmp_path, profile="alice")
    return Session(config, kdf=cheap_kdf, clock=lambda: 1_000.0)


def test_create_holds_the_lock_until_close(session: Session) -> None:
    assert not session.exists()
    with session.create("Alice", PASSPHRASE) as opened:
        assert session.exists() and opened.new
        assert opened.store.meta.display_name == "Alice"
        with pytest.raises(UserError, match="in use by another chinwag process"):
            session.lock()
        with pytest.raises(UserError, match="in use by another chinwag process"):
            session.unlock(PASSPHRASE)
    with session.unlock(PASSPHRASE) as again:  # closed: free again
        assert not again.new


def test_the_published_link_is_read_without_the_lock(session: Session) -> None:
    """`chinwag link` reads it while another process holds the profile (the link is public);
    it is written whole (a temporary file, then renamed), private to the user."""
    assert session.published_link() is None
    assert not session.publish_link("chinwag:x")  # no profile directory: logged, not raised
    with session.create("Alice", PASSPHRASE):
        session.publish_link("chinwag:first")
        session.publish_link("chinwag:second")
        with pytest.raises(ProfileInUse):
            session.lock()
        assert session.published_link() == "chinwag:second"
    path = session.profiles.directory("alice") / LINK_FILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir() if "link" in p.name) == [LINK_FILE_NAME]
    path.write_bytes(b"chinwag:" + b"x" * 100_000)  # bounded read
    assert len(session.published_link() or "") < 5_000


def test_creating_twice_or_with_a_bad_name_is_a_sentence(session: Session) -> None:
    with pytest.raises(UserError, match="display name: a display name cannot be empty"):
        session.create("   ", PASSPHRASE)
    session.create("Alice", PASSPHRASE).close()
    with pytest.raises(UserError, match="already exists"):
        session.create("Alice", PASSPHRASE)


def test_a_wrong_passphrase_is_a_sentence_and_leaves_the_profile_unlocked(
    session: Session,
) -> None:
    with pytest.raises(UserError, match="there is no profile named 'alice'"):
        session.unlock(PASSPHRASE)
    session.create("Alice", PASSPHRASE).close()
    with pytest.raises(UserError, match="wrong passphrase"):
        session.unlock("not it")
    session.lock().release()  # the failed unlock let go of the lock


def test_a_key_derived_early_is_used_once_for_its_passphrase(session: Session) -> None:
    session.create("Alice", PASSPHRASE).close()
    session.derive_early("a typo")
    with pytest.raises(UserError, match="wrong passphrase"):
        session.unlock("a typo")  # the early key's error surfaces here
    session.derive_early("a typo")
    session.unlock(PASSPHRASE).close()  # retyped: derived afresh, not the early key


async def test_the_reader_shows_the_chats_before_the_messenger_runs(session: Session) -> None:
    with session.create("Alice", PASSPHRASE) as opened:
        opened.store.conversations.add(
            Conversation(
                id="c" * 64, kind="direct", title="Bob", pubsub_topic="/waku/2/rs/42/0",
                content_topic="/chinwag/1/x/proto", created_at=1_000, last_activity_at=2_000,
            )
        )  # fmt: skip
        chats = await opened.reader().chats()
    assert [(c.id, c.name) for c in chats] == [("c" * 64, "Bob")]
