"""Emoji (SAS) verification with one contact: a small state machine in the h11 style.

States:
    started    we sent our SAS public key and wait for theirs
    compare    both keys are exchanged: both people compare the seven emoji
    confirmed  we said the emoji match and sent our MAC; we wait for theirs
    verified   both said they match and their MAC proves they hold the chat key we expect
    cancelled  someone said the emoji differ, or stopped
    failed     their MAC did not verify (a different secret: someone in the middle)

Rules: every step travels inside the pair's Olm session on their chat's topic, so only the
contact can take part. A new start (theirs or ours) replaces an unfinished verification.
Their MAC may arrive before we confirm: it is kept and checked when we do.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum

from chat.identity import IdentityError, SasVerification


class VerifyState(Enum):
    STARTED = "started"
    COMPARE = "compare"
    CONFIRMED = "confirmed"
    VERIFIED = "verified"
    CANCELLED = "cancelled"
    FAILED = "failed"


class VerifyEvent(Enum):
    THEIR_KEY = "their_key"
    CONFIRM = "confirm"
    THEIR_MAC_OK = "their_mac_ok"
    THEIR_MAC_BAD = "their_mac_bad"
    CANCEL = "cancel"


TRANSITIONS: dict[tuple[VerifyState, VerifyEvent], VerifyState] = {
    (VerifyState.STARTED, VerifyEvent.THEIR_KEY): VerifyState.COMPARE,
    (VerifyState.COMPARE, VerifyEvent.CONFIRM): VerifyState.CONFIRMED,
    (VerifyState.CONFIRMED, VerifyEvent.THEIR_MAC_OK): VerifyState.VERIFIED,
    (VerifyState.CONFIRMED, VerifyEvent.THEIR_MAC_BAD): VerifyState.FAILED,
    (VerifyState.STARTED, VerifyEvent.CANCEL): VerifyState.CANCELLED,
    (VerifyState.COMPARE, VerifyEvent.CANCEL): VerifyState.CANCELLED,
    (VerifyState.CONFIRMED, VerifyEvent.CANCEL): VerifyState.CANCELLED,
}
FINISHED = frozenset({VerifyState.VERIFIED, VerifyState.CANCELLED, VerifyState.FAILED})

START, REPLY, MAC, CANCEL = 1, 2, 3, 4
"""Step numbers on the wire (VerificationBody.step)."""


class VerificationError(Exception):
    """A step that is not possible now; a sentence for the user."""


@dataclass
class Verification:
    own_chat_key: bytes
    their_chat_key: bytes
    verification_id: str = field(default_factory=lambda: secrets.token_hex(8))
    state: VerifyState = VerifyState.STARTED
    their_mac: str | None = None
    sas: SasVerification = field(init=False)

    def __post_init__(self) -> None:
        self.sas = SasVerification(self.own_chat_key, self.their_chat_key)

    def _apply(self, event: VerifyEvent) -> None:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise VerificationError(
                f"cannot {event.value.replace('_', ' ')} a verification that is {self.state.value}"
            ) from None

    @property
    def emoji(self) -> list[tuple[str, str]]:
        return [] if self.state is VerifyState.STARTED else self.sas.emoji()

    def their_key(self, public_key: str) -> None:
        """Their SAS key arrived (their reply, or their start that we answer)."""
        try:
            self.sas.establish(public_key)
        except IdentityError as exc:
            raise VerificationError(str(exc)) from None
        self._apply(VerifyEvent.THEIR_KEY)

    def confirm(self) -> str:
        """The user says the emoji match: returns our MAC to send."""
        self._apply(VerifyEvent.CONFIRM)
        if self.their_mac is not None:
            self._check(self.their_mac)
        return self.sas.mac()

    def their_confirmation(self, mac: str) -> None:
        if self.state is VerifyState.COMPARE:
            self.their_mac = mac  # checked when our user confirms
        elif self.state is VerifyState.CONFIRMED:
            self._check(mac)
        else:
            raise VerificationError(f"a confirmation for a verification that is {self.state.value}")

    def _check(self, mac: str) -> None:
        try:
            self.sas.verify_mac(mac)
        except IdentityError:
            self._apply(VerifyEvent.THEIR_MAC_BAD)
            return
        self._apply(VerifyEvent.THEIR_MAC_OK)

    def cancel(self) -> None:
        self._apply(VerifyEvent.CANCEL)
