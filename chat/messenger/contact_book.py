"""What we know of the people we deal with: their contact links (parsed, and as the text we
keep), who holds which identity key, and whom we verified in person."""

from __future__ import annotations

from chat.direct import conversation_id
from chat.identity import ContactLink


class ContactBook:
    def __init__(self) -> None:
        self.links: dict[str, ContactLink] = {}
        """By chat key (text form)."""
        self.link_texts: dict[str, str] = {}
        self.by_identity_key: dict[bytes, str] = {}
        """Chat key by Curve25519 identity key: who an Olm-proven sender is."""
        self.verified: set[str] = set()

    def remember(self, link: ContactLink, text: str) -> None:
        """Their newest link (a re-sent request or an answer may carry a new name)."""
        self.links[link.chat_key_text] = link
        self.link_texts[link.chat_key_text] = text
        self.by_identity_key[link.identity_key] = link.chat_key_text

    def forget(self, chat_key: str) -> ContactLink | None:
        """Everything about them (a stranger whose request was dropped); their old link."""
        link = self.links.pop(chat_key, None)
        self.link_texts.pop(chat_key, None)
        if link is not None and self.by_identity_key.get(link.identity_key) == chat_key:
            del self.by_identity_key[link.identity_key]
        return link

    def __contains__(self, chat_key: str) -> bool:
        return chat_key in self.links

    def link(self, chat_key: str) -> ContactLink | None:
        return self.links.get(chat_key)

    def display_name(self, chat_key: str | None) -> str | None:
        link = self.links.get(chat_key) if chat_key is not None else None
        return link.display_name if link is not None else None

    def chat_id_with(self, own_chat_key: bytes, chat_key: str) -> str:
        """The id of our 1:1 conversation with this contact."""
        return conversation_id(own_chat_key, self.links[chat_key].chat_key)
