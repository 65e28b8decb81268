"""The newest signed description a service node has seen of each community it follows,
kept in a file per community (`DATA_DIR/node/communities/<id>.description`): after a restart
the node starts from it, not from the link's key, so a replayed older description cannot
pin it to an old shard key (one a banned member still holds)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from chat.communities.description import MAX_DESCRIPTION_BYTES, is_id

log = logging.getLogger(__name__)


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
        path = self._path(community_id)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            with partial.open("wb") as file:
                file.write(signed)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        except OSError as exc:
            log.warning("community %s: description not kept: %s", community_id[:8], exc)
