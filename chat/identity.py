"""A profile's identity: its Olm account, chat key, display name and contact link.

- The chat key is the account's Ed25519 public key, written as bech32m with the prefix
  `cw` ("cw1…"), so a typo is caught by the checksum instead of reaching someone else.
- A contact link carries the chat key, the Curve25519 identity key and a signed fallback
  key, so the very first contact request is already an Olm pre-key message. The link is
  signed by the chat key: a damaged or altered link is refused.
- The fallback key rotates every FALLBACK_ROTATION; vodozemac keeps the previous one, so a
  link stays usable for one more rotation period (the grace period).
- SAS verification (vodozemac) turns a shared secret into 7 emoji both people compare.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from dataclasses import dataclass

import qrcode
import vodozemac
from google.protobuf.message import DecodeError

from chat import bech32
from chat.proto import contact_pb2

CHAT_KEY_PREFIX = "cw"
LINK_SCHEME = "chinwag:"
LINK_VERSION = 1
LINK_SIGNATURE_CONTEXT = b"chinwag-contact-link-v1"
MAX_LINK_LENGTH = 2048
MAX_DISPLAY_NAME = 64
FALLBACK_ROTATION = 7 * 24 * 3600.0
"""Seconds between fallback key rotations; the previous key stays valid for as long."""


class IdentityError(ValueError):
    """A chat key, link or verification step that is not acceptable; a sentence for users."""


def format_chat_key(key: bytes) -> str:
    if len(key) != 32:
        raise IdentityError("a chat key is 32 bytes")
    return bech32.encode(CHAT_KEY_PREFIX, key)


def parse_chat_key(text: str) -> bytes:
    try:
        key = bech32.decode(text.strip(), CHAT_KEY_PREFIX)
    except bech32.Bech32Error as exc:
        raise IdentityError(f"that is not a chat key: it {exc}") from None
    if len(key) != 32:
        raise IdentityError("that is not a chat key: wrong length")
    return key


# Text other people choose (display names, request intros) reaches our terminal. Characters of
# these categories can move the cursor, rewrite the screen or title (Cc: ESC, BEL, ...), reorder
# what is shown (Cf: bidi overrides and isolates, invisible marks), or have no agreed glyph at
# all (Co private use, Cn unassigned): they are dropped, never shown.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs"})
_JOINERS = frozenset({"\u200c", "\u200d"})
"""ZWNJ and ZWJ (Cf) are kept between two visible characters: Persian and Indic scripts need
ZWNJ, and emoji sequences (family, profession, flags with skin tones) are joined by ZWJ."""
_TAG_BASE = "\U0001f3f4"
_TAGS = range(0xE0020, 0xE0080)
"""Tag characters (Cf) are kept only right after a black flag, where they spell a
subdivision flag (England, Scotland, Wales); anywhere else they are hidden text."""
_NEWER_EMOJI = range(0x1F000, 0x1FB00)
"""Emoji added after the Unicode version of our Python are unassigned (Cn) to it; unassigned
code points in the emoji blocks are kept so a new emoji is not lost."""
_LINE_BREAKS = ("\r\n", "\r", "\u2028", "\u2029", "\x85")


def _strip_unsafe(text: str) -> str:
    kept: list[str] = []
    for char in text:
        if unicodedata.category(char) not in _UNSAFE_CATEGORIES or char in _JOINERS:
            kept.append(char)
        elif ord(char) in _TAGS:
            if kept and (kept[-1] == _TAG_BASE or ord(kept[-1]) in _TAGS):
                kept.append(char)
        elif ord(char) in _NEWER_EMOJI and unicodedata.category(char) == "Cn":
            kept.append(char)
    # A joiner must sit between two visible characters, not at an edge or next to a space
    # or another joiner, where it would only hide something.
    return "".join(
        char
        for i, char in enumerate(kept)
        if char not in _JOINERS
        or (0 < i < len(kept) - 1 and _visible(kept[i - 1]) and _visible(kept[i + 1]))
    )


def _visible(char: str) -> bool:
    return not char.isspace() and char not in _JOINERS


def sanitize_display_text(text: str, *, multiline: bool = False) -> str:
    """User-supplied text made safe to show in a terminal: control, format, private-use and
    unassigned characters are removed (except joiners, subdivision-flag tags and new emoji,
    see above). Runs of whitespace become one space; with `multiline`, line breaks survive as
    "\\n" (at most one empty line in a row). Every script and emoji is kept as it is."""
    if multiline:
        for br in _LINE_BREAKS:
            text = text.replace(br, "\n")
        joined = "\n".join(sanitize_display_text(line) for line in text.split("\n")).strip("\n")
        while "\n\n\n" in joined:
            joined = joined.replace("\n\n\n", "\n\n")
        return joined
    words = (_strip_unsafe(word) for word in text.split())  # whitespace controls separate
    return " ".join(word for word in words if word)


def validate_display_name(name: str) -> str:
    name = sanitize_display_text(name)
    if not name:
        raise IdentityError("a display name cannot be empty")
    if len(name) > MAX_DISPLAY_NAME:
        raise IdentityError(f"a display name has at most {MAX_DISPLAY_NAME} characters")
    return name


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


_FRAME_CHARACTERS = dict.fromkeys(range(0x2500, 0x25A0))
"""Box drawing (U+2500-U+257F) and block elements (U+2580-U+259F): borders and scroll bars
that come along when a wrapped link is copied off the screen; no link contains them."""


def clean_link(text: str) -> str:
    """A pasted link without the whitespace, line breaks and frame characters around and
    inside it (what `ContactLink.parse` ignores)."""
    return "".join(text.split()).translate(_FRAME_CHARACTERS)


@dataclass(frozen=True, slots=True)
class ContactLink:
    chat_key: bytes
    identity_key: bytes
    fallback_key: bytes
    fallback_created_at: int
    display_name: str

    @property
    def chat_key_text(self) -> str:
        return format_chat_key(self.chat_key)

    @classmethod
    def parse(cls, text: str) -> ContactLink:
        """Decode and verify a pasted link. Whitespace, line breaks and the box-drawing and
        block characters a terminal frames text with are ignored: a link copied off a
        screen where it wrapped inside a box still works."""
        text = clean_link(text)
        if len(text) > MAX_LINK_LENGTH:
            raise IdentityError("that link is too long to be a chinwag contact link")
        if not text.startswith(LINK_SCHEME):
            raise IdentityError(
                "that is not a chinwag contact link (it should start with chinwag:)"
            )
        try:
            outer = contact_pb2.ContactLink.FromString(_unb64(text[len(LINK_SCHEME) :]))
            body = contact_pb2.ContactLinkBody.FromString(outer.body)
        except (ValueError, DecodeError):
            raise IdentityError("that contact link is damaged; ask for it again") from None
        if body.version > LINK_VERSION:
            raise IdentityError("that contact link comes from a newer chinwag; please update")
        if body.version != LINK_VERSION:
            raise IdentityError("that contact link is damaged; ask for it again")
        if len(body.chat_key) != 32 or len(body.identity_key) != 32 or len(body.fallback_key) != 32:
            raise IdentityError("that contact link is damaged; ask for it again")
        try:
            signer = vodozemac.Ed25519PublicKey.from_base64(
                base64.b64encode(body.chat_key).decode().rstrip("=")
            )
            signer.verify_signature(
                LINK_SIGNATURE_CONTEXT + outer.body,
                vodozemac.Ed25519Signature.from_base64(
                    base64.b64encode(outer.signature).decode().rstrip("=")
                ),
            )
        except (vodozemac.KeyException, vodozemac.SignatureException):
            raise IdentityError("that contact link has a bad signature; ask for it again") from None
        return cls(
            chat_key=body.chat_key,
            identity_key=body.identity_key,
            fallback_key=body.fallback_key,
            fallback_created_at=body.fallback_created_at,
            display_name=validate_display_name(
                sanitize_display_text(body.display_name) or "unnamed"
            ),
        )


def _key_bytes(key: vodozemac.Curve25519PublicKey | vodozemac.Ed25519PublicKey) -> bytes:
    return base64.b64decode(key.to_base64() + "=" * (-len(key.to_base64()) % 4))


class Identity:
    """The Olm account of a profile plus what we publish about it."""

    def __init__(
        self,
        account: vodozemac.Account,
        display_name: str,
        fallback_key: bytes,
        fallback_created_at: float,
    ) -> None:
        self.account = account
        self.display_name = validate_display_name(display_name)
        self.fallback_key = fallback_key
        self.fallback_created_at = fallback_created_at

    @classmethod
    def create(cls, display_name: str, now: float) -> Identity:
        account = vodozemac.Account()
        identity = cls(account, display_name, b"", now)
        identity._rotate_fallback(now)
        return identity

    @property
    def chat_key(self) -> bytes:
        return _key_bytes(self.account.ed25519_key)

    @property
    def chat_key_text(self) -> str:
        return format_chat_key(self.chat_key)

    @property
    def identity_key(self) -> bytes:
        return _key_bytes(self.account.curve25519_key)

    def _rotate_fallback(self, now: float) -> None:
        # vodozemac's type stubs lack the fallback-key API; it exists at run time.
        self.account.generate_fallback_key()  # type: ignore[attr-defined]
        (key,) = self.account.fallback_key.values()  # type: ignore[attr-defined]
        self.account.mark_keys_as_published()
        self.fallback_key = _key_bytes(key)
        self.fallback_created_at = now

    def maybe_rotate_fallback(self, now: float) -> bool:
        """Rotate the fallback key when it is due; the previous one keeps working."""
        if now - self.fallback_created_at < FALLBACK_ROTATION:
            return False
        self._rotate_fallback(now)
        return True

    def sign(self, data: bytes) -> bytes:
        signature = self.account.sign(data).to_base64()
        return base64.b64decode(signature + "=" * (-len(signature) % 4))

    def contact_link(self) -> str:
        body = contact_pb2.ContactLinkBody(
            version=LINK_VERSION,
            chat_key=self.chat_key,
            identity_key=self.identity_key,
            fallback_key=self.fallback_key,
            fallback_created_at=int(self.fallback_created_at),
            display_name=self.display_name,
        ).SerializeToString()
        outer = contact_pb2.ContactLink(
            body=body, signature=self.sign(LINK_SIGNATURE_CONTEXT + body)
        )
        return LINK_SCHEME + _b64(outer.SerializeToString())

    def pickle(self, key: bytes) -> str:
        """The account, encrypted with a 32-byte key (derived from the profile's DB key)."""
        if len(key) != 32:
            raise IdentityError("the pickle key must be 32 bytes")
        result: str = self.account.pickle(key)
        return result

    @classmethod
    def from_pickle(
        cls,
        pickle: str,
        key: bytes,
        display_name: str,
        fallback_key: bytes,
        fallback_created_at: float,
    ) -> Identity:
        try:
            account = vodozemac.Account.from_pickle(pickle, key)
        except vodozemac.PickleException:
            raise IdentityError("the stored account cannot be opened with this key") from None
        return cls(account, display_name, fallback_key, fallback_created_at)


def render_qr(text: str) -> str:
    """A QR code as text, two modules per character cell, with a quiet zone."""
    # Level L (7% recovery): read off a screen, not a worn print; a 255-character link then
    # takes 61 columns and 31 rows instead of 69 and 35, so it fits beside the link text.
    qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    glyphs = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
    return "\n".join(
        "".join(glyphs[(top, bottom)] for top, bottom in zip(matrix[y], matrix[y + 1], strict=True))
        for y in range(0, len(matrix), 2)
    )


# The 64 SAS emoji of the Matrix specification, indexed by 6-bit values.
SAS_EMOJI: tuple[tuple[str, str], ...] = (
    ("🐶", "Dog"), ("🐱", "Cat"), ("🦁", "Lion"), ("🐎", "Horse"), ("🦄", "Unicorn"),
    ("🐷", "Pig"), ("🐘", "Elephant"), ("🐰", "Rabbit"), ("🐼", "Panda"), ("🐓", "Rooster"),
    ("🐧", "Penguin"), ("🐢", "Turtle"), ("🐟", "Fish"), ("🐙", "Octopus"), ("🦋", "Butterfly"),
    ("🌷", "Flower"), ("🌳", "Tree"), ("🌵", "Cactus"), ("🍄", "Mushroom"), ("🌏", "Globe"),
    ("🌙", "Moon"), ("☁️", "Cloud"), ("🔥", "Fire"), ("🍌", "Banana"), ("🍎", "Apple"),
    ("🍓", "Strawberry"), ("🌽", "Corn"), ("🍕", "Pizza"), ("🎂", "Cake"), ("❤️", "Heart"),
    ("😀", "Smiley"), ("🤖", "Robot"), ("🎩", "Hat"), ("👓", "Glasses"), ("🔧", "Spanner"),
    ("🎅", "Santa"), ("👍", "Thumbs Up"), ("☂️", "Umbrella"), ("⌛", "Hourglass"), ("⏰", "Clock"),
    ("🎁", "Gift"), ("💡", "Light Bulb"), ("📕", "Book"), ("✏️", "Pencil"), ("📎", "Paperclip"),
    ("✂️", "Scissors"), ("🔒", "Lock"), ("🔑", "Key"), ("🔨", "Hammer"), ("☎️", "Telephone"),
    ("🏁", "Flag"), ("🚂", "Train"), ("🚲", "Bicycle"), ("✈️", "Aeroplane"), ("🚀", "Rocket"),
    ("🏆", "Trophy"), ("⚽", "Ball"), ("🎸", "Guitar"), ("🎺", "Trumpet"), ("🔔", "Bell"),
    ("⚓", "Anchor"), ("🎧", "Headphones"), ("📁", "Folder"), ("📌", "Pin"),
)  # fmt: skip


class SasVerification:
    """One side of an emoji verification between two chat keys.

    Both sides exchange `public_key` (over their Olm session), compare `emoji()` out of
    band, then exchange `mac()`; `verify_mac` proves the other side saw the same secret
    and holds the chat key we think it does.
    """

    def __init__(self, own_chat_key: bytes, their_chat_key: bytes) -> None:
        self._sas = vodozemac.Sas()
        self.public_key: str = self._sas.public_key.to_base64()
        self._own = own_chat_key
        self._theirs = their_chat_key
        self._established: vodozemac.EstablishedSas | None = None
        self._their_public_key = ""

    def _info(self, purpose: str) -> str:
        keys = sorted([self._own, self._theirs])
        sas_keys = sorted([self.public_key, self._their_public_key])
        return "|".join(["CHINWAG_SAS_V1", purpose, *(k.hex() for k in keys), *sas_keys])

    def establish(self, their_public_key: str) -> None:
        try:
            key = vodozemac.Curve25519PublicKey.from_base64(their_public_key)
            self._established = self._sas.diffie_hellman(key)
        except (vodozemac.KeyException, vodozemac.SasException):
            raise IdentityError("the verification key from your contact is not valid") from None
        self._their_public_key = their_public_key

    def _require(self) -> vodozemac.EstablishedSas:
        if self._established is None:
            raise IdentityError("verification has not started: exchange keys first")
        return self._established

    def emoji(self) -> list[tuple[str, str]]:
        sas_bytes = self._require().bytes(self._info("EMOJI"))
        return [SAS_EMOJI[i] for i in sas_bytes.emoji_indices]

    def mac(self) -> str:
        result: str = self._require().calculate_mac(self._own.hex(), self._info("MAC"))
        return result

    def verify_mac(self, mac: str) -> None:
        try:
            self._require().verify_mac(self._theirs.hex(), self._info("MAC"), mac)
        except vodozemac.SasException:
            raise IdentityError("verification failed: the codes did not match") from None


def short_fingerprint(key: bytes) -> str:
    """A few groups of hex for showing a key compactly (not a security check)."""
    digest = hashlib.sha256(key).hexdigest()[:16]
    return " ".join(digest[i : i + 4] for i in range(0, 16, 4))
