"""The layering of the code, read from the source with `ast` (tests/harness/layering.py):
faces → core (session, messenger) → features and reliability → chat/waku → storage/; ui/
talks to the core only; chat/waku imports nothing from the rest of chat/; storage/ nothing
above it. And no module over 800 lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.layering import check_tree, line_count, source_files

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 800


def test_every_import_points_down_the_layers() -> None:
    found = check_tree(ROOT)
    assert not found, "imports that break the layering:\n" + "\n".join(found)


def test_the_check_names_file_and_line_of_every_kind_of_break(tmp_path: Path) -> None:
    files = {
        "chat/__init__.py": "",
        "chat/errors.py": "",
        "chat/events.py": "",
        "chat/session.py": "",
        "chat/config.py": "",
        "chat/fleet.py": "",
        "chat/history.py": "from chat import events\nfrom storage.store import Store\n",
        "chat/contacts.py": "def later():\n    from chat.messenger import Messenger\n",
        "chat/messenger/__init__.py": "from chat.messenger.config import MessengerConfig\n",
        "chat/messenger/config.py": "from chat.waku.node import Node\n",
        "chat/api/__init__.py": "from chat.history import StoredChats\n",
        "chat/waku/__init__.py": "",
        "chat/waku/node.py": "import trio\nfrom chat.waku import host\n",
        "chat/waku/host.py": "\nfrom ..fleet import NetworkSettings\n",
        "storage/__init__.py": "",
        "storage/store.py": "import sqlite3\n\n\nfrom chat.errors import UserError\n",
        "ui/__init__.py": "",
        "ui/ok.py": (
            "from textual.app import App\nfrom chat.messenger import Messenger\n"
            "from chat import session\nfrom chat.errors import UserError\nfrom ui import ok\n"
        ),
        "ui/bad.py": (
            "import importlib\nfrom typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from storage.store import Store\n"
            "from chat.config import Config\n"
            "from chat.messenger.config import MessengerConfig\n"
            "from multiaddr import Multiaddr\n"
            "importlib.import_module('chat.waku.node')\n"
        ),
        "ui/app.py": "from chat.session import Session\n",
        "ui/screens/__init__.py": "",
        "ui/screens/main.py": "from ui.host import host\nfrom ui.app import ChinwagApp\n",
        "ui/host.py": "",
        "chat/telemetry/__init__.py": "",
        "chat/telemetry/schema.py": "import re\nfrom chat.telemetry import identifiers\n",
        "chat/telemetry/identifiers.py": "from chat.errors import UserError\n",
        "chat/telemetry/client/__init__.py": "",
        "chat/telemetry/client/hook.py": (  # the client sits with the core: allowed
            "from chat.messenger import Messenger\nfrom chat.events import Event\n"
        ),
        "chat/telemetry/collector/__init__.py": "",
        "chat/telemetry/collector/app.py": (
            "from chat.api.server import serve_api\nfrom chat.telemetry import schema\n"
            "from chat.messenger import Messenger\n"
        ),
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    found = check_tree(tmp_path)

    assert sorted(line.split(": ", 1)[0] for line in found) == [
        "chat/contacts.py:2",  # features → core, even inside a function
        "chat/telemetry/collector/app.py:3",  # the collector → the core
        "chat/telemetry/identifiers.py:1",  # the shared wire format → the rest of chat/
        "chat/waku/host.py:2",  # the node stack → chat/ (a relative import)
        "storage/store.py:4",
        "ui/bad.py:4",  # storage, under TYPE_CHECKING too
        "ui/bad.py:5",  # chat.config: below the core
        "ui/bad.py:6",  # a submodule of the messenger package, not its public names
        "ui/bad.py:7",  # the node stack's library
        "ui/bad.py:8",  # importlib.import_module with a literal name
        "ui/screens/main.py:2",  # a screen importing the app
    ]
    assert any("ui/ talks to the core only" in line for line in found)
    assert any("chat/waku imports nothing from the rest of chat/" in line for line in found)
    assert any("storage/ imports nothing from chat/ or ui/" in line for line in found)
    assert any("features may not import core" in line for line in found)
    assert any("screens reach the app through ui.host" in line for line in found)
    assert any("the collector never imports the core" in line for line in found)
    assert any("wire format imports nothing else of chat/" in line for line in found)


def _module_params() -> list[object]:
    return [pytest.param(path, id=path.relative_to(ROOT).as_posix()) for path in source_files(ROOT)]


@pytest.mark.parametrize("path", _module_params())
def test_no_module_is_over_800_lines(path: Path) -> None:
    lines = line_count(path)
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES})"
