"""The community link: what someone needs to find a community and ask to join it.

    chinwag-community:<base64url of a chinwag.community.Link>

It carries the owner key (the community id is derived from it, so a link cannot point one
community's id at another's key), the shard (cluster and index) and its protection key as
they were when the link was made, a name hint and a few bootstrap multiaddrs. Everything but
the owner key is a hint: the signed description, fetched from the shard, is what counts.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from chat.communities.description import (
    MAX_CLUSTER_ID,
    MAX_NAME,
    MAX_SHARD,
    Description,
    DescriptionError,
    clean_text,
    community_id_of,
)
from chat.identity import clean_link, render_qr
from chat.proto import community_pb2
from chat.waku.protowire import parse

LINK_SCHEME = "chinwag-community:"
FORMAT = 1
MAX_COMMUNITY_LINK = 2048
MAX_BOOTSTRAP = 4
MAX_BOOTSTRAP_ADDRESS = 256


class LinkError(ValueError):
    """Text that is not a usable community link; a sentence for the user."""


@dataclass(frozen=True, slots=True)
class CommunityLink:
    owner_key: bytes
    cluster_id: int
    shard: int
    protection_key: bytes = b""
    bootstrap: tuple[str, ...] = ()
    name: str = ""

    @property
    def community_id(self) -> str:
        return community_id_of(self.owner_key)

    @classmethod
    def of(cls, description: Description, bootstrap: tuple[str, ...] = ()) -> CommunityLink:
        """The link; bootstrap hints past MAX_BOOTSTRAP or over MAX_BOOTSTRAP_ADDRESS are
        left out (with the longest name, four of the longest still fit MAX_COMMUNITY_LINK)."""
        hints = tuple(a for a in bootstrap if len(a) <= MAX_BOOTSTRAP_ADDRESS)[:MAX_BOOTSTRAP]
        return cls(
            owner_key=description.owner_key,
            cluster_id=description.cluster_id,
            shard=description.shard,
            protection_key=description.protection_key,
            bootstrap=hints,
            name=description.name,
        )

    def encode(self) -> str:
        pb = community_pb2.Link(
            format=FORMAT,
            owner_key=self.owner_key,
            cluster_id=self.cluster_id,
            shard=self.shard,
            protection_key=self.protection_key,
            bootstrap=list(self.bootstrap),
            name=self.name,
        )
        encoded = base64.urlsafe_b64encode(pb.SerializeToString()).rstrip(b"=").decode()
        return LINK_SCHEME + encoded

    def qr(self) -> str:
        """The link as a text QR code (chat.identity.render_qr)."""
        return render_qr(self.encode())

    @classmethod
    def parse(cls, text: str) -> CommunityLink:
        """A pasted link (whitespace and terminal frame characters ignored); LinkError."""
        text = clean_link(text)
        if len(text) > MAX_COMMUNITY_LINK:
            raise LinkError("that link is too long to be a chinwag community link")
        if not text.startswith(LINK_SCHEME):
            raise LinkError(
                f"that is not a chinwag community link (it should start with {LINK_SCHEME})"
            )
        payload = text[len(LINK_SCHEME) :]
        try:
            raw = base64.b64decode(payload + "=" * (-len(payload) % 4), b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise LinkError("that community link is damaged; ask for it again") from None
        pb = parse(community_pb2.Link, raw, LinkError, "a community link")
        if pb.format > FORMAT:
            raise LinkError("that community link comes from a newer chinwag; please update")
        if pb.format != FORMAT or len(pb.owner_key) != 32:
            raise LinkError("that community link is damaged; ask for it again")
        if pb.cluster_id > MAX_CLUSTER_ID or pb.shard > MAX_SHARD:
            raise LinkError("that community link names an impossible shard")
        if pb.protection_key and len(pb.protection_key) != 33:
            raise LinkError("that community link has a malformed protection key")
        if len(pb.bootstrap) > MAX_BOOTSTRAP or any(
            len(address) > MAX_BOOTSTRAP_ADDRESS for address in pb.bootstrap
        ):
            raise LinkError("that community link has too many or too long bootstrap addresses")
        try:
            name = clean_text(pb.name, MAX_NAME, "a community name")
        except DescriptionError as exc:
            raise LinkError(f"that community link is damaged: {exc}") from None
        return cls(
            owner_key=pb.owner_key,
            cluster_id=pb.cluster_id,
            shard=pb.shard,
            protection_key=pb.protection_key,
            bootstrap=tuple(pb.bootstrap),
            name=name,
        )
