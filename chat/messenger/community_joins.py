"""Joining communities: join requests, answers and member keys on the wire (the flows of
chat/communities/join.py, sans-IO, driven with Olm and the profile DB). Fetching a link is
community_fetches.py, leaving community_leaving.py, the requests topic's wire community_wire.py.

- A join request goes inside Olm to the owner and every admin (their contact links are in
  the signed description), on the community's requests topic on the default shard: a
  requester holds no shard key and could not publish on the community's shard. It goes
  again on the flow's schedule until answered, cancelled or expired.
- A moderator (owner or admin) who accepts makes the next description (the requester in
  it), publishes the signed answer on the requests topic (every other moderator's copy of
  the request closes) and sends the requester, inside Olm, the content key, the shard's
  protection secret and the newest description with the answer. Open communities are
  answered at once by whichever moderator gets the request.
- Kick and ban: the new epoch's keys go the same way to every remaining member whose link
  we know; every other moderator passes them on to the members whose links it knows.
Every step is saved (with the Olm ratchet it moved) before it is published.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import replace

from chat import events as ev
from chat.communities.answers import (
    Answer,
    JoinWireError,
    MemberKeys,
    Request,
    accept_answer,
    check_answer,
    decode_answer,
    sign_answer,
)
from chat.communities.channel import community_content_topic, requests_content_topic
from chat.communities.description import (
    Description,
    DescriptionError,
    JoinPolicy,
    Member,
    decode_description,
)
from chat.communities.join import (
    Direction,
    JoinRequest,
    JoinRequestError,
    JoinRequests,
    RequestState,
    RequestTransition,
    request_from_json,
    request_to_json,
)
from chat.communities.moderation import add_member
from chat.communities.roles import Action, Role, allowed
from chat.direct import DirectError, Envelope
from chat.identity import ContactLink, IdentityError
from chat.messenger.communities import CommunityChats
from chat.messenger.community_fetches import CommunityFetches, parse_link
from chat.messenger.community_leaving import CommunityLeaving
from chat.messenger.community_state import Community
from chat.messenger.community_wire import (
    MAX_REQUESTS_MESSAGE,
    AddInbox,
    RequestsPublisher,
    TopicInbox,
    WatchTopic,
    answer_message,
    from_moderator,
    pairwise,
)
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import OpenRefused, Transport
from chat.messenger.node import MessengerNode
from chat.messenger.olm import OlmCrypto
from chat.messenger.persist import StateWriter
from chat.proto import community_pb2, direct_pb2
from chat.waku.message import WakuMessage
from chat.waku.protected import InvalidShardKey, ShardKeyPair
from chat.waku.protowire import parse
from storage.repositories.communities import StoredRequest
from storage.store import Store

log = logging.getLogger(__name__)


class CommunityJoins:
    def __init__(
        self,
        ctx: MessengerContext,
        node: MessengerNode,
        olm: OlmCrypto,
        writer: StateWriter,
        transport: Transport,
        chats: CommunityChats,
        watch: WatchTopic,
        add_inbox: AddInbox,
        pubsub_topic: str,
    ) -> None:
        self._ctx = ctx
        self._node = node
        self._olm = olm
        self._writer = writer
        self._transport = transport
        self._chats = chats
        self._watch = watch
        self._add_inbox = add_inbox
        self.pubsub_topic = pubsub_topic
        """The default shard, where requests topics live."""
        self.requests = JoinRequests(chats.policy.requests)
        self.owner_last_seen: dict[str, float] = {}
        """Per community: when the newest thing its owner signed that reached us was signed."""
        self._watched: set[str] = set()
        self._publisher = RequestsPublisher(ctx, transport, pubsub_topic)
        self.fetching = CommunityFetches(ctx, node, chats, watch, add_inbox, self._watch_requests)
        self._links: dict[str, str] = {}
        """Per community: the link our pending request was sent for (saved with it)."""
        self.leaving = CommunityLeaving(ctx, olm, writer, chats, self._publisher)

    # ---- loading ----------------------------------------------------------------------------
    async def load(self) -> None:
        for stored in await self._ctx.db.run(lambda s: s.communities.requests()):
            try:
                request = request_from_json(stored.id, stored.flow)
            except JoinRequestError as exc:
                log.warning("join request %s not restored: %s", stored.id[:8], exc)
                continue
            self.requests.restore(request)
            community = self._chats.communities.get(request.community_id)
            if community is not None and request.requester_link:
                community.links[request.requester] = request.requester_link
            if request.direction is Direction.SENT and request.open:
                self._restore_sent(stored)
        for community in self._chats.communities.all():
            await self.watch(community)
        for request in self.requests.all():
            if request.direction is Direction.SENT and request.open:
                await self._watch_requests(request.community_id)
                link = self._links.get(request.community_id)
                if link:  # the description, if we had none, is fetched again
                    try:
                        await self.fetching.fetch(link)
                    except ev.MessengerError as exc:
                        log.warning("join request %s: link not reopened: %s", request.id[:8], exc)

    def _restore_sent(self, stored: StoredRequest) -> None:
        """Our pending request's link and the description it goes by, as saved: it keeps
        its schedule, expiry and answers without the link being opened again."""
        if stored.link:
            self._links[stored.community_id] = stored.link
        if stored.description is None or self._chats.communities.book.get(stored.community_id):
            return
        try:
            description = decode_description(stored.description)
        except DescriptionError as exc:
            log.warning("join request %s: its description not restored: %s", stored.id[:8], exc)
            return
        if description.id == stored.community_id:
            self._chats.communities.book.restore(description)

    async def watch(self, community: Community) -> None:
        """The community's description topic (on its shard) and requests topic (default)."""
        self._add_inbox(
            community_content_topic(community.id),
            self.fetching.description_inbox(community.id),
        )
        await self._watch_requests(community.id)

    async def _watch_requests(self, community_id: str) -> None:
        if community_id in self._watched:
            return
        self._watched.add(community_id)
        topic = requests_content_topic(community_id)

        async def handle(message: WakuMessage) -> None:
            await self._on_requests_message(community_id, message)

        self._add_inbox(topic, TopicInbox(handle, urgent=False))
        await self._watch(self.pubsub_topic, topic)

    # ---- fetching (community_fetches.py) -----------------------------------------------------
    @property
    def scan_now(self) -> Callable[[str, tuple[str, ...], float], None] | None:
        return self.fetching.scan_now

    @scan_now.setter
    def scan_now(self, scan: Callable[[str, tuple[str, ...], float], None] | None) -> None:
        self.fetching.scan_now = scan

    async def fetch(self, text: str) -> ev.CommunityFetchView:
        return await self.fetching.fetch(text)

    def fetch_view(self, community_id: str) -> ev.CommunityFetchView:
        return self.fetching.fetch_view(community_id)

    async def description_arrived(self, description: Description) -> None:
        """A valid description: a fetch of it is found; our request waiting for it goes."""
        if self._chats.signed_by_owner(description.signer, description):
            self._owner_seen(description.id, description.at)
        self.fetching.found(description.id)
        request = self.requests.open_for(description.id)
        if request is not None and request.sends == 0:
            await self._send_request(request)
        elif request is not None:
            await self._save(request, None)  # the newer description it goes by

    # ---- our requests ---------------------------------------------------------------------
    async def join(self, text: str, message: str) -> ev.CommunityRequestView:
        link = parse_link(text)
        community_id = link.community_id
        community = self._chats.communities.get(community_id)
        if community is not None and community.member:
            raise ev.NotPossible("you are a member of that community already")
        held = self.requests.open_for(community_id)
        if held is not None:
            return self.request_view(held)
        now = self._ctx.clock()
        request_id = secrets.token_hex(16)
        transition = self.requests.send(
            request_id, community_id, self._ctx.me.chat_key_text, message, now
        )
        request = self._require(request_id)
        request.owner_last_seen = self.owner_last_seen.get(community_id)
        self._links[community_id] = text.strip()
        await self._save(request, transition)
        if self._chats.communities.book.get(community_id) is None:
            await self.fetch(text)  # the request goes when the description is found
        else:
            await self._watch_requests(community_id)
            await self._send_request(request)
        return self.request_view(request)

    async def _send_request(self, request: JoinRequest) -> None:
        """One copy to every moderator whose link the description holds."""
        description = self._chats.communities.book.get(request.community_id)
        if description is None:
            return self.requests.postpone(request.id, self._ctx.clock())
        now = self._ctx.clock()
        body = Request(
            request.id,
            request.community_id,
            ContactLink.parse(self._ctx.me.contact_link()),
            self._ctx.me.contact_link(),
            request.message,
            now,
            request.expires_at or now,
        ).encode()
        messages = []
        for chat_key in description.moderators():
            member = description.member(chat_key)
            if member is None or not member.contact_link or chat_key == self._ctx.me.chat_key_text:
                continue
            link = ContactLink.parse(member.contact_link)
            envelope = self._olm.seal_to(
                link, direct_pb2.DirectPayload(community_join_request=body)
            )
            messages.append(pairwise(link.identity_key, envelope.encode()))
        transition = self.requests.sent(request.id, now)
        await self._save(request, transition, with_crypto=True)
        for payload in messages:
            self._publish(request.community_id, payload)

    async def cancel(self, request_id: str) -> ev.CommunityRequestView:
        request = self._require(request_id)
        try:
            transition = self.requests.cancel(request.id, self._ctx.clock())
        except JoinRequestError as exc:
            raise ev.NotPossible(str(exc)) from None
        await self._save(request, transition)
        return self.request_view(request)

    # ---- requests to communities we moderate ----------------------------------------------
    async def accept(self, request_id: str) -> ev.CommunityRequestView:
        request = self._moderated(request_id)
        community = self._chats.community(request.community_id)
        if not request.open:
            raise ev.NotPossible("that request is no longer pending")
        me, now = self._ctx.me.chat_key_text, self._ctx.clock()
        link = ContactLink.parse(request.requester_link)
        joined = Member(request.requester, link.display_name, Role.MEMBER)
        await self._chats.apply(
            community, lambda: add_member(community.description, me, joined, now)
        )
        community.links[request.requester] = request.requester_link
        answer = sign_answer(
            community.signer(self._ctx.me), request.id, community.id, request.requester,
            accepted=True, reason="", now=now,
        )  # fmt: skip
        transition = self.requests.accept(request.id, now, by=me)
        await self._send_keys(community, request.requester, answer.signed, also=request)
        self._publish(community.id, answer_message(answer))
        del transition
        return self.request_view(request)

    async def decline(self, request_id: str, reason: str = "") -> ev.CommunityRequestView:
        request = self._moderated(request_id)
        community = self._chats.community(request.community_id)
        now = self._ctx.clock()
        try:
            transition = self.requests.decline(
                request.id, now, by=self._ctx.me.chat_key_text, reason=reason
            )
        except JoinRequestError as exc:
            raise ev.NotPossible(str(exc)) from None
        answer = sign_answer(
            community.signer(self._ctx.me), request.id, community.id, request.requester,
            accepted=False, reason=reason, now=now,
        )  # fmt: skip
        await self._save(request, transition)
        self._publish(community.id, answer_message(answer))
        return self.request_view(request)

    def _moderated(self, request_id: str) -> JoinRequest:
        request = self._require(request_id)
        if request.direction is not Direction.RECEIVED:
            raise ev.NotPossible("only moderators answer a request; this one is ours")
        community = self._chats.community(request.community_id)
        if not allowed(community.role, Action.ANSWER_REQUEST):
            raise ev.NotAllowed("only the owner or an admin may answer join requests")
        return request

    async def _send_keys(
        self, community: Community, chat_key: str, answer: bytes, also: JoinRequest | None
    ) -> None:
        current = community.keys.current
        link_text = community.link_of(chat_key)
        if current is None or not link_text:
            if also is not None:
                await self._save(also, None)
            return
        epoch, key = current
        keys = MemberKeys(
            community.id,
            epoch,
            key,
            community.protection.secret_bytes() if community.protection else b"",
            community.description.signed,
            answer,
        )
        link = ContactLink.parse(link_text)
        envelope = self._olm.seal_to(link, direct_pb2.DirectPayload(community_keys=keys.encode()))
        if also is not None:
            await self._save(also, None, with_crypto=True)
        else:
            await self._writer.save_crypto_now()
        self._publish(community.id, pairwise(link.identity_key, envelope.encode()))

    async def send_keys_to(self, community: Community, chat_key: str) -> None:
        """The current keys to one member (one we added again after our version lost)."""
        await self._send_keys(community, chat_key, b"", None)

    async def send_keys_to_members(self, community: Community) -> None:
        """A new epoch (kick, ban): its keys to every remaining member whose link we know."""
        for member in community.description.members:
            if member.chat_key != community.own:
                await self._send_keys(community, member.chat_key, b"", None)

    # ---- the requests topic -----------------------------------------------------------------
    async def _on_requests_message(self, community_id: str, message: WakuMessage) -> None:
        if len(message.payload) > MAX_REQUESTS_MESSAGE:
            self._ctx.reject("an oversized message on a community's requests topic")
            return
        try:
            pb = parse(community_pb2.RequestsMessage, message.payload, JoinWireError, "")
        except JoinWireError as exc:
            self._ctx.reject(f"a community requests message: {exc}")
            return
        if pb.description:
            await self._chats.offer_description(pb.description, community_id, "a copy")
            return
        if pb.answer:
            await self._on_answer(community_id, pb.answer)
            return
        if pb.recipient_identity_key != self._ctx.me.identity_key:
            return  # someone else's
        try:
            envelope = Envelope.decode(pb.envelope)
            opened = self._olm.open_envelope(envelope)
        except (DirectError, OpenRefused) as exc:
            reason = exc.reason if isinstance(exc, OpenRefused) else str(exc)
            self._ctx.reject(f"a community request message: {reason}")
            return
        self._writer.save_later(crypto=True)
        body = opened.payload.WhichOneof("body")
        if body == "community_join_request":
            await self._on_request(
                community_id, opened.sender_identity_key, opened.payload.community_join_request
            )
        elif body == "community_keys":
            await self._on_keys(
                community_id, opened.sender_identity_key, opened.payload.community_keys
            )
        elif body == "community_leave":
            await self.leaving.on_leave(
                community_id, opened.sender_identity_key, opened.payload.community_leave
            )
        else:
            self._ctx.reject(f"a '{body}' on a community's requests topic")

    async def _on_request(self, community_id: str, sender_identity: bytes, data: bytes) -> None:
        community = self._chats.communities.get(community_id)
        try:
            request = Request.decode(data)
        except JoinWireError as exc:
            self._ctx.reject(str(exc))
            return
        if request.link.identity_key != sender_identity:
            self._ctx.reject("a join request whose link is not its Olm-proven sender's")
            return
        if community is None or request.community_id != community_id:
            return
        if not allowed(community.role, Action.ANSWER_REQUEST):
            return
        self._olm.vouch(sender_identity)
        now = self._ctx.clock()
        held = self.requests.get(request.request_id)
        try:
            transition = self.requests.received(
                request.request_id, community_id, request.requester, request.link_text,
                request.message, request.expires_at, now,
            )  # fmt: skip
        except JoinRequestError as exc:
            log.info("join request %s ignored: %s", request.request_id[:8], exc)
            return
        flow = self._require(request.request_id)
        community.links[request.requester] = request.link_text
        await self._save(flow, transition)
        description = community.description
        if held is not None and held.state is RequestState.ACCEPTED:
            if description.role_of(request.requester) is not None:
                answer = sign_answer(
                    community.signer(self._ctx.me), flow.id, community_id, flow.requester,
                    accepted=True, reason="", now=now,
                )  # fmt: skip
                await self._send_keys(community, flow.requester, answer.signed, None)
            return
        if not flow.open:
            return
        if request.requester in description.banned:
            await self.decline(flow.id, "banned from this community")
        elif description.role_of(request.requester) is not None:
            await self.accept_member_again(community, flow)
        elif description.join_policy is JoinPolicy.OPEN:
            await self.accept(flow.id)

    async def accept_member_again(self, community: Community, flow: JoinRequest) -> None:
        """A member asks again (their keys were lost): the keys again, nothing else changes."""
        now = self._ctx.clock()
        transition = self.requests.accept(flow.id, now, by=self._ctx.me.chat_key_text)
        answer = sign_answer(
            community.signer(self._ctx.me), flow.id, community.id, flow.requester,
            accepted=True, reason="", now=now,
        )  # fmt: skip
        del transition
        await self._send_keys(community, flow.requester, answer.signed, also=flow)

    async def _on_answer(self, community_id: str, signed: bytes) -> None:
        description = self._chats.communities.book.get(community_id)
        if description is None:
            return
        answer = accept_answer(signed, description)
        if answer is None:
            self._ctx.reject("a join answer not signed by the owner or an admin")
            return
        self._seen(description, answer)
        request = self.requests.get_for(answer.request_id, community_id)
        if request is None or request.requester != answer.requester:
            return
        now = self._ctx.clock()
        if request.direction is Direction.SENT and answer.accepted:
            return  # we are in once the keys arrive (they carry the answer)
        try:
            transition = self.requests.answered(
                request.id, now, accepted=answer.accepted, by=answer.signer_text,
                reason=answer.reason,
            )  # fmt: skip
        except JoinRequestError:
            return
        await self._save(request, transition)

    def _seen(self, description: Description, answer: Answer) -> None:
        if self._chats.signed_by_owner(answer.signer, description):
            self._owner_seen(description.id, answer.at)

    def _owner_seen(self, community_id: str, signed_at: float) -> None:
        """Something the owner signed at `signed_at` (their clock, never after ours)."""
        seen = min(signed_at, self._ctx.clock())
        self.owner_last_seen[community_id] = max(self.owner_last_seen.get(community_id, 0), seen)
        community = self._chats.communities.get(community_id)
        if community is not None:
            community.owner_last_seen = max(community.owner_last_seen or 0, seen)
        self.requests.owner_seen(community_id, seen)

    async def _on_keys(self, community_id: str, sender_identity: bytes, data: bytes) -> None:
        try:
            keys = MemberKeys.decode(data)
            keys.checked_description()
        except JoinWireError as exc:
            self._ctx.reject(str(exc))
            return
        if keys.community_id != community_id:
            self._ctx.reject("member keys on another community's topic")
            return
        await self._chats.offer_description(keys.description, community_id, "member keys")
        description = self._chats.communities.book.get(community_id)
        if description is None:
            self._ctx.reject("member keys whose description the owner key did not sign")
            return
        if not from_moderator(description, sender_identity):
            self._ctx.reject("member keys not sent by the owner or an admin")
            return
        own = self._ctx.me.chat_key_text
        if description.role_of(own) is None:
            self._ctx.reject("member keys for a community that does not list us")
            return
        answer = None
        if keys.answer:
            try:
                answer = decode_answer(keys.answer)
                check_answer(answer, description)
            except JoinWireError as exc:
                self._ctx.reject(f"member keys with {exc}")
                return
        community = self._chats.communities.get(community_id)
        fresh = community is None
        if community is None:
            community = Community(description, own)
        held_key = community.keys.get(keys.epoch)
        # Keys that came with a version we do not keep (one that lost the tie to a rival of
        # the same number) do not replace the epoch's key: the kept version's moderator's do.
        replaces = held_key is None or keys.description == description.signed
        forward = not fresh and replaces and held_key != keys.content_key
        if replaces:
            community.keys.add(keys.epoch, keys.content_key)
        if keys.protection_secret:
            try:
                pair = ShardKeyPair.from_secret_bytes(keys.protection_secret)
            except InvalidShardKey:
                pair = None
            if pair is not None and pair.public_key.to_bytes() == description.protection_key:
                community.protection = pair
        if fresh:
            self._chats.communities.add(community)
        await self._chats.adopt(community, description)
        await self._chats.serve(community)
        if fresh:
            await self.watch(community)
        elif forward and allowed(community.role, Action.ANSWER_REQUEST):
            await self.send_keys_to_members(community)  # those only we know the links of
        if answer is not None:
            self._seen(description, answer)
            request = self.requests.get(answer.request_id)
            if request is not None and request.direction is Direction.SENT:
                try:
                    transition = self.requests.answered(
                        request.id, self._ctx.clock(), accepted=True, by=answer.signer_text
                    )
                except JoinRequestError:
                    transition = None
                await self._save(request, transition)

    # ---- time ---------------------------------------------------------------------------------
    def next_wakeup(self) -> float | None:
        times = [t for t in (self.fetching.next_wakeup(), self.requests.next_wakeup()) if t]
        return min(times) if times else None

    async def run_due(self, now: float) -> None:
        self.fetching.run_due(now)
        resend, expired = self.requests.due(now)
        for request, transition in expired:
            await self._save(request, transition)
        for request in resend:
            await self._send_request(request)

    # ---- views and saving -------------------------------------------------------------------
    def request_view(self, request: JoinRequest) -> ev.CommunityRequestView:
        name = ""
        if request.requester_link:
            try:
                name = ContactLink.parse(request.requester_link).display_name
            except IdentityError:
                name = ""
        elif request.direction is Direction.SENT:
            name = self._ctx.me.display_name
        return ev.CommunityRequestView(
            id=request.id,
            community_id=request.community_id,
            chat_key=request.requester,
            display_name=name,
            direction=request.direction.value,
            state=request.state.value if request.state else "pending",
            state_reason=request.reason or None,
            owner_last_seen=request.owner_last_seen,
            expires_at=request.expires_at,
            message=request.message,
            sends=request.sends,
            next_send_at=request.next_send_at,
        )

    def views(self) -> list[ev.CommunityRequestView]:
        return [
            self.request_view(r) for r in sorted(self.requests.all(), key=lambda r: r.created_at)
        ]

    def _require(self, request_id: str) -> JoinRequest:
        request = self.requests.get(request_id[:64])
        if request is None:
            raise ev.NotFound("there is no such join request")
        return request

    async def _save(
        self,
        request: JoinRequest,
        transition: RequestTransition | None,
        *,
        with_crypto: bool = False,
    ) -> None:
        stored = StoredRequest(
            request.id,
            request.community_id,
            request.direction.value,
            request.requester,
            request.state.value if request.state else None,
            request_to_json(request),
            self._ctx.now_ms(),
        )
        if request.direction is Direction.SENT:
            held = self._chats.communities.book.get(request.community_id)
            stored = replace(
                stored,
                link=self._links.get(request.community_id, ""),
                description=held.signed if held is not None else None,
            )

        def save(store: Store) -> None:
            store.communities.save_request(stored)

        if with_crypto:
            await self._writer.save_crypto_now(also=save)
        else:
            await self._ctx.db.run(save)
        self._ctx.emit(ev.CommunityRequestUpdated(self.request_view(request)))

    def publish_description(self, community: Community) -> bool:
        """A copy of the description on the requests topic (default shard): whoever follows
        the community learns a new shard key there even while the shard refuses what the
        new key signed (a relay or member that still checks the old one)."""
        payload = community_pb2.RequestsMessage(description=community.description.signed)
        return self._publish(community.id, payload.SerializeToString())

    async def tell_moderators_we_leave(self, community: Community) -> None:
        await self.leaving.tell_moderators(community)

    def _publish(self, community_id: str, payload: bytes) -> bool:
        return self._publisher.publish(community_id, payload)
