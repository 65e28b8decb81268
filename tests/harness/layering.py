"""The import layering of chat/, ui/ and storage/, read with `ast` from the source files (no
module is imported, so it runs in well under a second and names the file and line).

Layers, top to bottom; an import may point to its own layer or below, never up:

    faces        ui/, chat/api, chat/commands, chat/cli.py, chat/unlock.py (the CLI's unlock),
                 chat/lab (QA's tool over everything: it drives chinwag processes, reads the
                 telemetry report's page helpers, scales the messenger's timers for `serve`)
    core         chat/session.py, chat.messenger (the façade and its package)
    features     the rest of chat/: contacts, direct, identity, events, history, reliability,
                 client_node, fleet, config, errors, logs, proto, ...
    node stack   chat/waku
    persistence  storage/

Besides: ui/ talks to the core only (the messenger's public names, its events, the session,
chat.errors, chat.text's rules for typed text: no storage, no node stack, no libp2p), and
nothing in ui/ imports ui.app (screens reach the app through the host protocol, ui/host.py);
chat/waku imports nothing from the rest of chat/; storage/ nothing from chat/ or ui/.
The telemetry collector (chat/telemetry/collector) is a face of its own: it may use chat/api's
HTTP server but never the core or storage/; the wire format it shares with the client
(the rest of chat/telemetry) imports nothing else of chat/, except the client beside the
messenger (chat/telemetry/client), which sits with the core."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("chat", "ui", "storage")
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "faces",
        (
            "ui",
            "chat.api",
            "chat.commands",
            "chat.cli",
            "chat.unlock",
            "chat.__main__",
            "chat.telemetry.collector",
            "chat.lab",
        ),
    ),
    ("core", ("chat.session", "chat.messenger", "chat.telemetry.client")),
    ("features", ("chat",)),
    ("node stack", ("chat.waku",)),
    ("persistence", ("storage",)),
)
UI_MAY_IMPORT = ("chat.messenger", "chat.events", "chat.session", "chat.errors", "chat.text")
"""Exactly these modules of chat/ (not chat.messenger's submodules: its public names only)."""
NODE_LIBRARIES = ("libp2p", "multiaddr")
TELEMETRY_WIRE = "chat.telemetry"
"""The wire format the client and the collector share: it imports nothing else of chat/."""
COLLECTOR = "chat.telemetry.collector"
TELEMETRY_CLIENT = "chat.telemetry.client"
"""The client beside the messenger: with the core, outside the wire format's rule."""
COLLECTOR_NEVER = ("chat.session", "chat.messenger", "storage")
"""The collector is a server of its own: no profile, no messenger, no profile storage."""


@dataclass(frozen=True)
class Import:
    path: str
    """The importing file, relative to the repository root."""
    line: int
    importer: str
    module: str
    """The imported module, absolute."""

    def where(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.module}"


def source_files(root: Path) -> list[Path]:
    """Every Python module of the three packages, generated protobuf modules aside."""
    files: list[Path] = []
    for package in PACKAGES:
        files.extend(p for p in (root / package).rglob("*.py") if not p.name.endswith("_pb2.py"))
    return sorted(files)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every import in the file, wherever it sits (functions, TYPE_CHECKING blocks too), plus
    `importlib.import_module("...")` with a literal name."""
    importer = module_name(path, root)
    is_package = path.name == "__init__.py"
    relative = path.relative_to(root).as_posix()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(relative, node.lineno, importer, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, importer, is_package)
            names: dict[str, None] = {}
            for alias in node.names:
                # `from chat import events` imports the module chat.events
                candidate = f"{base}.{alias.name}"
                names[candidate if _is_module(candidate, root) else base] = None
            for name in names:
                yield Import(relative, node.lineno, importer, name)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(relative, node.lineno, importer, node.args[0].value)


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int | None:
    """The layer's index (0 is the top), by the longest matching prefix; None: not ours."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def violations(imports: Iterable[Import]) -> list[str]:
    """Every import that breaks the layering, one sentence each naming file and line."""
    found: list[str] = []
    for item in imports:
        source, target = layer_of(item.importer), layer_of(item.module)
        if _within(item.importer, "ui"):
            found.extend(_ui_rule(item))
        into_chat = _within(item.module, "chat") and not _within(item.module, "chat.waku")
        if _within(item.importer, "chat.waku") and into_chat:
            found.append(f"{item.where()}: chat/waku imports nothing from the rest of chat/")
            continue
        if _within(item.importer, COLLECTOR) and any(
            _within(item.module, name) for name in COLLECTOR_NEVER
        ):
            found.append(f"{item.where()}: the collector never imports the core or storage/")
            continue
        if (
            _within(item.importer, TELEMETRY_WIRE)
            and not _within(item.importer, COLLECTOR)
            and not _within(item.importer, TELEMETRY_CLIENT)
            and _within(item.module, "chat")
            and not _within(item.module, TELEMETRY_WIRE)
        ):
            found.append(
                f"{item.where()}: chat/telemetry's wire format imports nothing else of chat/"
            )
            continue
        if _within(item.importer, "storage") and target is not None and target != source:
            found.append(f"{item.where()}: storage/ imports nothing from chat/ or ui/")
            continue
        if source is not None and target is not None and target < source:
            found.append(
                f"{item.where()}: {LAYERS[source][0]} may not import {LAYERS[target][0]} "
                "(dependencies point down only)"
            )
    return found


def _ui_rule(item: Import) -> list[str]:
    if _within(item.module, "ui.app") and not _within(item.importer, "ui.app"):
        return [f"{item.where()}: screens reach the app through ui.host, never ui.app"]
    if _within(item.module, "ui"):
        return []
    if _within(item.module, "chat"):
        if item.module in UI_MAY_IMPORT:
            return []
        return [
            f"{item.where()}: ui/ talks to the core only ({', '.join(UI_MAY_IMPORT)}; "
            "chat.messenger by its public names)"
        ]
    if _within(item.module, "storage") or any(_within(item.module, n) for n in NODE_LIBRARIES):
        return [f"{item.where()}: ui/ never touches storage/ or the node stack"]
    return []


def check_tree(root: Path) -> list[str]:
    """The layering violations in the source tree under `root`."""
    return violations(item for path in source_files(root) for item in imports_of(path, root))


def line_count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)
