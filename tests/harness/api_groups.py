"""Live `chinwag serve` processes driven over HTTP for the group paths of the REST API
(tests/integration/api/test_api_groups.py): a client that asserts success, contacts made
over the API between any two of several, and an event stream collected in the background."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from chat.api.sse import parse_frames
from harness.waiting import wait_until


@dataclass
class Person:
    """One `chinwag serve` and an HTTP client that carries its token."""

    name: str
    http: httpx.AsyncClient
    chat_key: str = ""
    events: list[tuple[str, Any]] = field(default_factory=list)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request that must succeed (2xx); its JSON body."""
        response = await self.http.request(method, path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def status(self, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
        """A request's status and error sentence (for the ones that must fail)."""
        response = await self.http.request(method, path, **kwargs)
        return response.status_code, str(response.json().get("error", ""))

    async def listen(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Collect /v1/events into `events` until cancelled."""
        async with self.http.stream("GET", "/v1/events", timeout=None) as response:
            buffered = b""
            started = False
            async for chunk in response.aiter_raw():
                if not started:  # the first chunk is the 'connected' comment
                    started = True
                    task_status.started()
                buffered += chunk
                found, buffered = parse_frames(buffered)
                self.events.extend((kind, json.loads(data)) for kind, data in found)


async def befriend(asking: Person, answering: Person) -> None:
    """`asking` sends a contact request over the API, `answering` accepts it; both mutual."""

    async def both_online() -> bool:
        health = [await p.call("GET", "/v1/health") for p in (asking, answering)]
        return all(sum(h["peers_per_shard"].values()) > 0 for h in health)

    await wait_until(both_online)
    link = (await answering.call("GET", "/v1/identity"))["contact_link"]
    await asking.call("POST", "/v1/contacts", json={"link": link})

    async def has_request() -> bool:
        contacts = await answering.call("GET", "/v1/contacts")
        return any(c["chat_key"] == asking.chat_key for c in contacts)

    await wait_until(has_request)
    await answering.call("POST", f"/v1/contacts/{asking.chat_key}/accept")

    async def mutual() -> bool:
        contacts = await asking.call("GET", "/v1/contacts")
        return any(c["chat_key"] == answering.chat_key and c["state"] == "mutual" for c in contacts)

    await wait_until(mutual)


async def member_states(person: Person, group_id: str) -> dict[str, str]:
    group = await person.call("GET", f"/v1/groups/{group_id}")
    return {m["display_name"]: m["state"] for m in group["members"]}
