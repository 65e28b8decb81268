"""The newest signed description a service node has seen of each community it follows,
kept in a file per community (`DATA_DIR/node/communities/<id>.description`): after a restart
the node starts from it, not from the link's key, so a replayed older description cannot
pin it to an old shard key (one a banned member still holds). Beside it, the shard key of
the link the node last started with (`<id>.link`): a node started with another link (a newer
one, handed over after the node missed a key change) starts from that link instead, since
the kept version may then be the older one."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from chat.communities.description import MAX_DESCRIPTION_BYTES, is_id

log = logging.getLogger(__name__)


MAX_LINK_KEY_BYTES = 64
"""A shard's public key is 33 bytes; what is read back is bounded."""


class KeptDescriptions:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, community_id: str) -> Path:
        if not is_id(community_id):
            raise ValueError("not a community id")
        return self.directory / f"{community_id}.description"

    def load(self, community_id: str) -> bytes | None:
        """The signed bytes as saved (not yet checked), or None."""
        path = self._path(community_id)
        try:
            with path.open("rb") as file:
                data = file.read(MAX_DESCRIPTION_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("community %s: kept description not read: %s", community_id[:8], exc)
            return None
        if len(data) > MAX_DESCRIPTION_BYTES:
            log.warning("community %s: kept description oversized, ignored", community_id[:8])
            return None
        return data

    def save(self, community_id: str, signed: bytes) -> None:
        """Written whole or not at all (a crash mid-write leaves the previous one)."""
        self._write(self._path(community_id), signed, community_id)

    def load_link_key(self, community_id: str) -> bytes | None:
        """The shard key of the link the node last started with (b"": none), or None."""
        try:
            with self._path(community_id).with_suffix(".link").open("rb") as file:
                return file.read(MAX_LINK_KEY_BYTES + 1)[:MAX_LINK_KEY_BYTES]
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("community %s: kept link key not read: %s", community_id[:8], exc)
            return None

    def started_with(self, community_id: str, link_key: bytes) -> None:
        """The node starts with a link naming this shard key (b"": none)."""
        self._write(self._path(community_id).with_suffix(".link"), link_key, community_id)

    def forget(self, community_id: str) -> None:
        """The kept description no longer counts (the node was given another link)."""
        try:
            self._path(community_id).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("community %s: kept description not removed: %s", community_id[:8], exc)

    def _write(self, path: Path, data: bytes, community_id: str) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            with partial.open("wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        except OSError as exc:
            log.warning("community %s: %s not kept: %s", community_id[:8], path.name, exc)
