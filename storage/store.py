"""An unlocked profile database with one repository per aggregate."""

from __future__ import annotations

from storage.db import Database
from storage.kdf import subkey
from storage.repositories.communities import CommunityRepository
from storage.repositories.contacts import ContactRepository
from storage.repositories.conversations import ConversationRepository
from storage.repositories.groups import GroupInviteRepository, GroupRepository
from storage.repositories.identity import IdentityRepository
from storage.repositories.messages import MessageRepository
from storage.repositories.meta import ProfileMetaRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.recipients import RecipientRepository
from storage.repositories.reliability import (
    ReceivedHashRepository,
    SdsChannelRepository,
    SyncCursorRepository,
)
from storage.repositories.sessions import ContactFlowRepository, OlmSessionRepository
from storage.repositories.telemetry import TelemetryQueueRepository
from storage.repositories.telemetry_outbox import TelemetryOutboxRepository

ACCOUNT_PICKLE_PURPOSE = "olm-account-pickle"
OLM_SESSION_PICKLE_PURPOSE = "olm-session-pickle"
GROUP_SESSION_PICKLE_PURPOSE = "megolm-session-pickle"


class Store:
    """Synchronous: call it from one thread at a time (storage.aio does that for trio code)."""

    def __init__(self, db: Database, database_key: bytes) -> None:
        self.db = db
        self.meta = ProfileMetaRepository(db)
        self.identity = IdentityRepository(db, subkey(database_key, ACCOUNT_PICKLE_PURPOSE))
        self.contacts = ContactRepository(db)
        self.conversations = ConversationRepository(db)
        self.messages = MessageRepository(db)
        self.outbox = OutboxRepository(db)
        self.sds_channels = SdsChannelRepository(db)
        self.sync_cursors = SyncCursorRepository(db)
        self.received_hashes = ReceivedHashRepository(db)
        self.communities = CommunityRepository(db)
        self.telemetry = TelemetryQueueRepository(db)
        self.telemetry_outbox = TelemetryOutboxRepository(db)
        self.contact_flows = ContactFlowRepository(db)
        self.olm_sessions = OlmSessionRepository(db)
        self.session_pickle_key = subkey(database_key, OLM_SESSION_PICKLE_PURPOSE)
        self.groups = GroupRepository(db)
        self.group_invites = GroupInviteRepository(db)
        self.recipients = RecipientRepository(db)
        self.group_pickle_key = subkey(database_key, GROUP_SESSION_PICKLE_PURPOSE)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
