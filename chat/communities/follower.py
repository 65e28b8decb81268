"""A service node that follows a community (`chinwag node --community LINK`): it protects the
community's shard with the key the newest validly signed description names, and switches to
a new key by itself when a ban rotates it.

The link gives the community (its id from the owner key), the shard and the key to start
with. Descriptions arrive on the community's topic on its shard (signed with the shard key
the node checks) and as copies on the community's requests topic on the default shard: a
moderator who bans publishes the new description while still signing with the old key, and
its copy on the default shard reaches a node that missed that. The book decides what counts
(chat/communities/book.py): only a newer version signed by the owner key or an admin moves
the key. `offer` returns the key to protect with now, and the caller applies it.

With `kept` (kept.py), the newest version ever seen is saved and a restart starts from it
rather than from the link's key: the link is a hint that may be older than what the node
saw, and an older description replayed on the unprotected default shard would otherwise
pin the node to an old key until a moderator publishes again.
"""

from __future__ import annotations

import logging

from chat.communities.book import DescriptionBook
from chat.communities.channel import community_content_topic, requests_content_topic
from chat.communities.description import DescriptionError, decode_description
from chat.communities.kept import KeptDescriptions
from chat.communities.link import CommunityLink
from chat.proto import community_pb2
from chat.waku.protected import InvalidShardKey, ShardPublicKey
from chat.waku.protowire import parse
from chat.waku.topics import format_pubsub_topic

log = logging.getLogger(__name__)


class FollowError(ValueError):
    """A community that cannot be followed as given; a sentence for the operator."""


class CommunityFollower:
    def __init__(
        self,
        link: CommunityLink,
        default_pubsub_topic: str,
        kept: KeptDescriptions | None = None,
    ) -> None:
        self.link = link
        self.community_id = link.community_id
        self.pubsub_topic = format_pubsub_topic(link.cluster_id, link.shard)
        self.default_pubsub_topic = default_pubsub_topic
        self.book = DescriptionBook()
        self.key: ShardPublicKey | None = None
        if link.protection_key:
            try:
                self.key = ShardPublicKey.from_bytes(link.protection_key)
            except InvalidShardKey as exc:
                raise FollowError(f"the community link's shard key is not valid: {exc}") from None
        self.rotations = 0
        self.kept = kept
        if kept is not None:
            self._restore(kept)

    def _restore(self, kept: KeptDescriptions) -> None:
        """The newest description this node saw, from its own data dir (trusted as saved,
        checked again: a damaged file is logged and the link's key stays)."""
        link_key = self.link.protection_key
        last_link_key = kept.load_link_key(self.community_id)
        if last_link_key is not None and last_link_key != link_key:
            # Another link than last time: it may be newer than what the node kept.
            log.info("community %s: a new link; starting from its key", self.community_id[:8])
            kept.forget(self.community_id)  # first: a crash here must not bring it back
        kept.started_with(self.community_id, link_key)
        signed = kept.load(self.community_id)
        if signed is None:
            return
        try:
            description = decode_description(signed)
            if description.id != self.community_id:
                raise DescriptionError("a description of another community")
            key = (
                ShardPublicKey.from_bytes(description.protection_key)
                if description.protection_key
                else None
            )
        except (DescriptionError, InvalidShardKey) as exc:
            log.warning("community %s: kept description ignored: %s", self.community_id[:8], exc)
            return
        self.book.restore(description)
        if key is not None:
            self.key = key
        log.info(
            "community %s: starting from kept description version %d",
            self.community_id[:8], description.version,
        )  # fmt: skip

    def watches(self, pubsub_topic: str, content_topic: str) -> bool:
        return (pubsub_topic, content_topic) in (
            (self.pubsub_topic, community_content_topic(self.community_id)),
            (self.default_pubsub_topic, requests_content_topic(self.community_id)),
        )

    def offer(self, pubsub_topic: str, content_topic: str, payload: bytes) -> ShardPublicKey | None:
        """A message on one of our topics; the shard's new key when it carried a newer
        description naming another one (None otherwise, or for anything else)."""
        if content_topic == requests_content_topic(self.community_id):
            try:
                message = parse(community_pb2.RequestsMessage, payload, ValueError, "")
            except ValueError:
                return None
            if not message.description:
                return None
            payload = message.description
        offered = self.book.offer(payload, self.community_id)
        description = offered.accepted
        if description is not None and self.kept is not None:
            self.kept.save(self.community_id, description.signed)
        if description is None or not description.protection_key:
            return None
        try:
            key = ShardPublicKey.from_bytes(description.protection_key)
        except InvalidShardKey:
            return None
        if key == self.key:
            return None
        if self.key is not None:
            self.rotations += 1
        log.info(
            "community %s: description version %d names shard key %s",
            self.community_id[:8], description.version, key.to_hex(),
        )  # fmt: skip
        self.key = key
        return key


def parse_community_link(text: str) -> CommunityLink:
    """A `--community` value; FollowError with the reason."""
    from chat.communities.link import LinkError

    try:
        return CommunityLink.parse(text)
    except LinkError as exc:
        raise FollowError(f"--community {text[:40]}…: {exc}") from None
