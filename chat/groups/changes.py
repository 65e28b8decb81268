"""Membership changes of a private group: what one change says, its signature, its bounds.

A change is a `ChangeBody` (chat/proto/group.proto) signed with its author's chat key
(Ed25519). Its id is a hash of the signed body, so the same change has the same id on every
member, whoever forwarded it. The group's id is derived from its `created` change the same
way: a log whose root does not hash to the group id is not that group's log.

Sans-IO: decoding, verifying and building changes; what a change does to the member list
is the log's business (log.py).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import vodozemac

from chat.identity import (
    MAX_LINK_LENGTH,
    ContactLink,
    Identity,
    IdentityError,
    format_chat_key,
    sanitize_display_text,
)
from chat.proto import group_pb2
from chat.waku.protowire import parse

CHANGE_VERSION = 1
SIGNATURE_CONTEXT = b"chinwag-group-change-v1"
GROUP_ID_CONTEXT = b"chinwag-group-v1"
CHANGE_ID_CONTEXT = b"chinwag-group-change-id-v1"
MAX_CHANGE_BYTES = 2048
"""A signed change: a contact link (under MAX_LINK_LENGTH) and some fields; longer is refused."""
MAX_GROUP_NAME = 64
"""Characters of a group name, as shown (after cleaning)."""
MAX_LAMPORT = 2**63 - 1
"""A log position beyond this is refused (a change cannot push the log to the end of time)."""
ID_LENGTH = 32
"""Group and change ids: 32 lowercase hex characters (128 bits of a hash)."""
MAX_PARENTS = 4
"""Change ids a change names as what it follows (its author's log heads; honest logs have one
or two). Each costs 18 bytes in every change of an invitation's copy of the log."""


class ChangeError(ValueError):
    """A change we cannot accept (undecodable, badly signed, out of bounds); a sentence."""


class ChangeKind(Enum):
    CREATED = "created"
    INVITED = "invited"
    JOINED = "joined"
    DECLINED = "declined"
    LEFT = "left"
    REMOVED = "removed"
    RENAMED = "renamed"
    ADMIN_GRANTED = "admin_granted"


@dataclass(frozen=True, slots=True)
class Change:
    id: str
    group_id: str
    lamport: int
    author: str
    """The author's chat key (text form)."""
    at: float
    """The author's clock (seconds)."""
    kind: ChangeKind
    subject: str
    """Whom it is about (chat key text): the invitee, the removed, the new admin; the author
    for created, joined, declined and left; empty for renamed."""
    name: str = ""
    """created, renamed: the group's name."""
    link: ContactLink | None = None
    """created, invited, joined: the subject's contact link."""
    link_text: str = ""
    invite_id: str = ""
    """joined, declined: the invitation answered."""
    expires_at: float | None = None
    """invited: the invitation lapses after this (the inviter's clock)."""
    signed: bytes = b""
    """The SignedChange as it travels."""
    parents: tuple[str, ...] = ()
    """The change ids its author's log ended with (its heads) when they made it: the change
    follows them and everything they follow (its causal past, defined by content)."""

    @property
    def order(self) -> tuple[int, str]:
        """The log's order: every member sorts the same changes the same way."""
        return (self.lamport, self.id)


def group_id_of(signed: bytes) -> str:
    return hashlib.sha256(GROUP_ID_CONTEXT + signed).hexdigest()[:ID_LENGTH]


def change_id_of(body: bytes) -> str:
    return hashlib.sha256(CHANGE_ID_CONTEXT + body).hexdigest()[:ID_LENGTH]


def clean_group_name(name: str) -> str:
    """A group name as every member shows it; ChangeError when empty or too long."""
    cleaned = sanitize_display_text(name)
    if not cleaned:
        raise ChangeError("a group name cannot be empty")
    if len(cleaned) > MAX_GROUP_NAME:
        raise ChangeError(f"a group name has at most {MAX_GROUP_NAME} characters")
    return cleaned


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _verify(author: bytes, body: bytes, signature: bytes) -> None:
    try:
        key = vodozemac.Ed25519PublicKey.from_base64(_b64(author))
        key.verify_signature(
            SIGNATURE_CONTEXT + body, vodozemac.Ed25519Signature.from_base64(_b64(signature))
        )
    except (vodozemac.KeyException, vodozemac.SignatureException):
        raise ChangeError("a membership change with a bad signature") from None


def _link(text: str, what: str) -> ContactLink:
    if len(text) > MAX_LINK_LENGTH:
        raise ChangeError(f"{what}: the contact link is too long")
    try:
        return ContactLink.parse(text)
    except IdentityError as exc:
        raise ChangeError(f"{what}: {exc}") from None


def decode_change(signed: bytes, group_id: str | None = None) -> Change:
    """A signed change, verified; `group_id`: the group it must belong to (a `created` change
    belongs to the group whose id it hashes to). Raises ChangeError."""
    if len(signed) > MAX_CHANGE_BYTES:
        raise ChangeError(
            f"a membership change of {len(signed)} bytes (at most {MAX_CHANGE_BYTES})"
        )
    outer = parse(group_pb2.SignedChange, signed, ChangeError, "a membership change")
    body = parse(group_pb2.ChangeBody, outer.body, ChangeError, "a membership change")
    if body.version != CHANGE_VERSION:
        raise ChangeError(f"a membership change of unknown version {body.version}")
    if len(body.author) != 32 or len(outer.signature) != 64:
        raise ChangeError("a membership change without a valid author or signature")
    if body.lamport > MAX_LAMPORT:
        raise ChangeError("a membership change with an impossible log position")
    _verify(body.author, outer.body, outer.signature)
    kind_name = body.WhichOneof("change")
    if kind_name is None:
        raise ChangeError("a membership change that changes nothing")
    kind = ChangeKind(kind_name)
    author = format_chat_key(body.author)
    if kind is ChangeKind.CREATED:
        own_id = group_id_of(signed)
        if body.group_id or body.lamport != 0:
            raise ChangeError("a 'created' change with a group id or a log position")
    else:
        own_id = body.group_id
        if body.lamport == 0:
            raise ChangeError("a membership change at the creation's log position")
    if group_id is not None and own_id != group_id:
        raise ChangeError("a membership change of another group")
    fields = _kind_fields(kind, body, author)
    parents = _parents(body, kind)
    return Change(
        id=change_id_of(outer.body),
        group_id=own_id,
        lamport=body.lamport,
        author=author,
        at=body.at_ms / 1000,
        kind=kind,
        subject=fields.subject,
        name=fields.name,
        link=fields.link,
        link_text=fields.link_text,
        invite_id=fields.invite_id,
        expires_at=fields.expires_at,
        signed=signed,
        parents=parents,
    )


def _parents(body: group_pb2.ChangeBody, kind: ChangeKind) -> tuple[str, ...]:
    if len(body.parents) > MAX_PARENTS:
        raise ChangeError(f"a membership change naming more than {MAX_PARENTS} earlier changes")
    if kind is ChangeKind.CREATED and body.parents:
        raise ChangeError("a 'created' change that follows other changes")
    if any(len(parent) != ID_LENGTH // 2 for parent in body.parents):
        raise ChangeError("a membership change naming an invalid earlier change")
    parents = tuple(parent.hex() for parent in body.parents)
    if len(set(parents)) != len(parents):
        raise ChangeError("a membership change naming an earlier change twice")
    return parents


@dataclass(frozen=True, slots=True)
class _Fields:
    subject: str
    name: str = ""
    link: ContactLink | None = None
    link_text: str = ""
    invite_id: str = ""
    expires_at: float | None = None


def _kind_fields(kind: ChangeKind, body: group_pb2.ChangeBody, author: str) -> _Fields:
    what = f"a '{kind.value}' change"
    if kind is ChangeKind.CREATED:
        link = _link(body.created.link, what)
        if link.chat_key_text != author:
            raise ChangeError(f"{what} whose link is not its author's")
        if len(body.created.nonce) != 16:
            raise ChangeError(f"{what} without its nonce")
        return _Fields(author, _name(body.created.name), link, body.created.link)
    if kind is ChangeKind.INVITED:
        link = _link(body.invited.link, what)
        if link.chat_key_text == author:
            raise ChangeError(f"{what} inviting its own author")
        expires_at = body.invited.expires_at_ms / 1000
        return _Fields(link.chat_key_text, "", link, body.invited.link, expires_at=expires_at)
    if kind is ChangeKind.JOINED:
        link = _link(body.joined.link, what)
        if link.chat_key_text != author:
            raise ChangeError(f"{what} whose link is not its author's")
        invite_id = _id(body.joined.invite_id, what)
        return _Fields(author, "", link, body.joined.link, invite_id)
    if kind is ChangeKind.DECLINED:
        return _Fields(author, invite_id=_id(body.declined.invite_id, what))
    if kind is ChangeKind.LEFT:
        return _Fields(author)
    if kind is ChangeKind.RENAMED:
        return _Fields("", _name(body.renamed.name))
    subject = body.removed.subject if kind is ChangeKind.REMOVED else body.admin_granted.subject
    if len(subject) != 32:
        raise ChangeError(f"{what} without a valid subject")
    return _Fields(format_chat_key(subject))


def _name(name: str) -> str:
    return clean_group_name(name[: MAX_GROUP_NAME * 4])


def _id(value: str, what: str) -> str:
    if len(value) != ID_LENGTH or any(c not in "0123456789abcdef" for c in value):
        raise ChangeError(f"{what} that names no valid invitation")
    return value


# ---- building our own changes ------------------------------------------------------------
def sign_change(identity: Identity, body: group_pb2.ChangeBody) -> Change:
    """Our change, signed; decoded back so that it passes the same checks as anyone's."""
    body.version = CHANGE_VERSION
    body.author = identity.chat_key
    data = body.SerializeToString()
    signed = group_pb2.SignedChange(body=data, signature=identity.sign(SIGNATURE_CONTEXT + data))
    return decode_change(signed.SerializeToString())


def created(identity: Identity, name: str, now: float) -> Change:
    body = group_pb2.ChangeBody(lamport=0, at_ms=int(now * 1000))
    body.created.name = clean_group_name(name)
    body.created.link = identity.contact_link()
    body.created.nonce = secrets.token_bytes(16)
    return sign_change(identity, body)


def _body(group_id: str, lamport: int, now: float, parents: Sequence[str]) -> group_pb2.ChangeBody:
    return group_pb2.ChangeBody(
        group_id=group_id,
        lamport=lamport,
        at_ms=int(now * 1000),
        parents=[bytes.fromhex(parent) for parent in parents],
    )


def invited(
    identity: Identity,
    group_id: str,
    lamport: int,
    link: str,
    expires_at: float,
    now: float,
    *,
    parents: Sequence[str] = (),
) -> Change:
    body = _body(group_id, lamport, now, parents)
    body.invited.link = link
    body.invited.expires_at_ms = int(expires_at * 1000)
    return sign_change(identity, body)


def joined(
    identity: Identity,
    group_id: str,
    lamport: int,
    invite_id: str,
    now: float,
    *,
    parents: Sequence[str] = (),
) -> Change:
    body = _body(group_id, lamport, now, parents)
    body.joined.invite_id = invite_id
    body.joined.link = identity.contact_link()
    return sign_change(identity, body)


def declined(
    identity: Identity,
    group_id: str,
    lamport: int,
    invite_id: str,
    now: float,
    *,
    parents: Sequence[str] = (),
) -> Change:
    body = _body(group_id, lamport, now, parents)
    body.declined.invite_id = invite_id
    return sign_change(identity, body)


def left(
    identity: Identity, group_id: str, lamport: int, now: float, *, parents: Sequence[str] = ()
) -> Change:
    body = _body(group_id, lamport, now, parents)
    body.left.SetInParent()
    return sign_change(identity, body)


def removed(
    identity: Identity,
    group_id: str,
    lamport: int,
    subject: bytes,
    now: float,
    *,
    parents: Sequence[str] = (),
) -> Change:
    body = _body(group_id, lamport, now, parents)
    body.removed.subject = subject
    return sign_change(identity, body)


def renamed(
    identity: Identity,
    group_id: str,
    lamport: int,
    name: str,
    now: float,
    *,
    parents: Sequence[str] = (),
) -> Change:
    body = _body(group_id, lamport, now, parents)
    body.renamed.name = clean_group_name(name)
    return sign_change(identity, body)


def admin_granted(
    identity: Identity,
    group_id: str,
    lamport: int,
    subject: bytes,
    now: float,
    *,
    parents: Sequence[str] = (),
) -> Change:
    body = _body(group_id, lamport, now, parents)
    body.admin_granted.subject = subject
    return sign_change(identity, body)
