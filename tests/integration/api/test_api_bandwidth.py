"""The bandwidth meter's faces on real processes: `GET /v1/bandwidth` of a live `chinwag
serve`, and the `chinwag_bandwidth_*` counters on `chinwag node`'s /metrics, after two
clients became contacts and one sent messages of a known size through the node."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from harness.api_contacts import befriend
from harness.waiting import wait_until

from chat.waku.bandwidth import KINDS, PROTOCOLS

MESSAGES = 10
TEXT_SIZE = 2000

pytestmark = pytest.mark.slow


class Caller:
    """An httpx client as harness.api_contacts.befriend drives one."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()


def _line(lines: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(line for line in lines if line["name"] == name)


def _series(text: str, name: str, **labels: str) -> float:
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "} "
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(wanted))


async def test_bandwidth_over_http_and_on_the_node_metrics(chinwag: Any) -> None:
    chinwag.create_profile("alice")
    chinwag.create_profile("bob")
    node = await chinwag.start_node()
    alice = await chinwag.serve("alice", node.addr)
    bob = await chinwag.serve("bob", node.addr)
    await node.wait_for_mesh(2)
    async with alice.client() as alice_http, bob.client() as bob_http:
        chat_id = await befriend(Caller(alice_http), Caller(bob_http))
        before = (await alice_http.get("/v1/bandwidth")).json()
        for i in range(MESSAGES):
            text = f"{i:03d} " + "x" * (TEXT_SIZE - 4)
            sent = await alice_http.post(f"/v1/chats/{chat_id}/messages", json={"text": text})
            assert sent.status_code == 202

        async def delivered() -> bool:
            # Bob has them and acknowledged them in his syncs (receipts).
            messages = (await alice_http.get(f"/v1/chats/{chat_id}/messages")).json()
            return sum(m["state"] == "delivered" for m in messages) >= MESSAGES

        await wait_until(delivered)
        sent_view = (await alice_http.get("/v1/bandwidth")).json()
        got_view = (await bob_http.get("/v1/bandwidth")).json()
        unauthorised = await httpx.AsyncClient(base_url=alice.url).get("/v1/bandwidth")

    assert unauthorised.status_code == 401
    assert [line["name"] for line in sent_view["protocols"]] == list(PROTOCOLS)
    assert [line["name"] for line in sent_view["kinds"]] == list(KINDS)
    chat_out = _line(sent_view["kinds"], "chat")["bytes_out"]
    chat_out -= _line(before["kinds"], "chat")["bytes_out"]
    # Encrypted and framed, each message is larger than its text, but not many times.
    assert MESSAGES * TEXT_SIZE <= chat_out <= MESSAGES * TEXT_SIZE * 2
    # The contact request went out on its own kind; relay is more than its kinds' sum by
    # the streams' negotiation only; nothing came in that was not counted.
    assert _line(sent_view["kinds"], "contact_request")["bytes_out"] > 0
    assert _line(got_view["kinds"], "contact_request")["bytes_in"] > 0
    assert _line(got_view["kinds"], "chat")["bytes_in"] >= MESSAGES * TEXT_SIZE
    # Bob's receipts went out as syncs, and came in to Alice as syncs once she opened them.
    assert _line(got_view["kinds"], "sync")["bytes_out"] > 0
    assert _line(sent_view["kinds"], "sync")["bytes_in"] > 0
    assert _line(sent_view["kinds"], "sync")["messages_in"] > 0
    relay = _line(sent_view["protocols"], "relay")
    assert relay["bytes_out"] >= sum(k["bytes_out"] for k in sent_view["kinds"])
    assert relay["minute_out"] > 0 and relay["hour_out"] > 0
    assert _line(sent_view["protocols"], "store")["bytes_in"] > 0  # presence checks
    assert sent_view["wire"]["bytes_out"] > sum(p["bytes_out"] for p in sent_view["protocols"])
    assert sent_view["uptime"] > 0

    async with httpx.AsyncClient() as http:
        metrics = (await http.get(node.metrics_url)).text
    relay_in = _series(metrics, "chinwag_bandwidth_bytes_total", protocol="relay", direction="in")
    assert relay_in >= MESSAGES * TEXT_SIZE
    assert _series(metrics, "chinwag_bandwidth_bytes_total", protocol="store", direction="out")
    forwarded = _series(
        metrics, "chinwag_bandwidth_relay_bytes_total", kind="message", direction="out"
    )
    assert forwarded >= MESSAGES * TEXT_SIZE  # to bob; the node classifies no topic
    assert (
        _series(metrics, "chinwag_bandwidth_relay_messages_total", kind="message", direction="in")
        >= MESSAGES
    )
    assert _series(metrics, "chinwag_bandwidth_relay_bytes_total", kind="control", direction="in")
    assert "Traceback" not in alice.process.stderr
