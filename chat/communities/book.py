"""The newest valid description of each community we know.

A description counts when it decodes and verifies (description.py) and its signer may sign
it: the owner key may sign anything; an admin (as the version we hold says) may sign a next
version that keeps the owner key, the owner and the set of admins as they are (admins edit,
kick, ban and manage channels; only the owner changes roles), and keeps the shard and its
protection key, except that a ban (the banned set grows) brings a new protection key
(roles.py has the rules). A version that is not newer
than the one we hold is ignored, but for one case: two moderators who sign the same version
at once (from the same predecessor). Each member gets both, in either order, and must end
with the same one, so the tie is decided by the versions alone (`wins_tie`): one the owner
signed beats an admin's, else the lower SHA-256 of the signed bytes wins. The rival must
be a valid successor of the predecessor we held (kept in memory for that). Every refusal is
logged with its reason and changes nothing.

Sans-IO: the messenger persists `accepted.signed` before it acts on it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from chat.communities.description import Description, DescriptionError, decode_description
from chat.communities.roles import Action, Role, allowed
from chat.identity import format_chat_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Offered:
    """What an offered description did: `accepted` is the new newest, or None with `reason`."""

    accepted: Description | None
    reason: str = ""


def _admins(description: Description) -> set[tuple[str, Role]]:
    return {(m.chat_key, m.role) for m in description.members if m.role is not Role.MEMBER}


def check_successor(current: Description | None, candidate: Description) -> None:
    """Raise DescriptionError unless `candidate` may replace `current` (None: nothing held)."""
    if current is not None and candidate.owner_key != current.owner_key:
        raise DescriptionError("a description of another community")
    if current is not None and candidate.version <= current.version:
        raise DescriptionError(
            f"an older description (version {candidate.version}, we hold {current.version})"
        )
    if candidate.signer == candidate.owner_key:
        return
    if current is None:
        raise DescriptionError("a description not signed by the owner key")
    signer = format_chat_key(candidate.signer)
    if current.role_of(signer) is not Role.ADMIN:
        raise DescriptionError("a description not signed by the owner or an admin")
    if _admins(candidate) != _admins(current):
        raise DescriptionError("an admin's description that changes the owner or the admins")
    _check_admin_shard(current, candidate)


def _check_admin_shard(current: Description, candidate: Description) -> None:
    """An admin keeps the shard; the key only moves with a ban, and stays a key."""
    if allowed(Role.ADMIN, Action.MOVE_SHARD):
        return
    only_owner = f"only the owner may {Action.MOVE_SHARD.value}"
    if (candidate.cluster_id, candidate.shard) != (current.cluster_id, current.shard):
        raise DescriptionError(f"an admin's description that moves the shard ({only_owner})")
    if candidate.protection_key == current.protection_key:
        return
    if not candidate.protection_key or not current.protection_key:
        raise DescriptionError(
            f"an admin's description that turns the shard's protection on or off ({only_owner})"
        )
    if not candidate.banned > current.banned:
        raise DescriptionError(
            f"an admin's description that changes the shard key without a ban ({only_owner})"
        )


def signed_by_owner(description: Description) -> bool:
    """Signed with the owner key, or with the owner's chat key."""
    if description.signer == description.owner_key:
        return True
    try:
        return format_chat_key(description.signer) == description.owner
    except (DescriptionError, ValueError):
        return False


def wins_tie(candidate: Description, held: Description) -> bool:
    """Of two versions with the same number, whether `candidate` is the one every member
    keeps: the owner's over an admin's, else the lower hash of the signed bytes."""
    rank = (not signed_by_owner(candidate), hashlib.sha256(candidate.signed).digest())
    other = (not signed_by_owner(held), hashlib.sha256(held.signed).digest())
    return rank < other


class DescriptionBook:
    """The newest valid description per community id."""

    def __init__(self) -> None:
        self._newest: dict[str, Description] = {}
        self._previous: dict[str, Description] = {}
        """The version the newest replaced: a rival of the newest is checked against it."""

    def get(self, community_id: str) -> Description | None:
        return self._newest.get(community_id)

    def all(self) -> list[Description]:
        return list(self._newest.values())

    def previous(self, community_id: str) -> Description | None:
        """The version the newest followed, if it reached us this run."""
        return self._previous.get(community_id)

    def restore(self, description: Description) -> None:
        self._newest[description.id] = description

    def forget(self, community_id: str) -> None:
        self._newest.pop(community_id, None)
        self._previous.pop(community_id, None)

    def offer(self, signed: bytes, expected_id: str | None = None) -> Offered:
        """A description as it arrived; `expected_id`: the community it must belong to (the
        content topic it came on). Never raises for bad input: it logs and returns why."""
        current = None
        try:
            candidate = decode_description(signed)
            current = self._newest.get(candidate.id)
            if current is not None and current.signed == signed:
                return Offered(None, "a copy of the description we hold")
            if expected_id is not None and candidate.id != expected_id:
                raise DescriptionError("a description of another community")
            if current is not None and candidate.version == current.version:
                self._check_rival(current, candidate)
            else:
                check_successor(current, candidate)
        except DescriptionError as exc:
            log.info("community description ignored: %s", exc)
            return Offered(None, str(exc))
        if current is not None and candidate.version > current.version:
            self._previous[candidate.id] = current
        self._newest[candidate.id] = candidate
        return Offered(candidate)

    def _check_rival(self, current: Description, candidate: Description) -> None:
        """`candidate` has the version we hold: it replaces it only when both follow the
        same predecessor and it wins the tie."""
        previous = self._previous.get(candidate.id)
        if previous is not None and previous.version != current.version - 1:
            previous = None
        if previous is None and candidate.signer != candidate.owner_key:
            raise DescriptionError(
                f"a concurrent version {candidate.version} whose predecessor we do not hold"
            )
        check_successor(previous, candidate)
        if not wins_tie(candidate, current):
            raise DescriptionError(
                f"a concurrent version {candidate.version} that loses the tie to the one we hold"
            )
