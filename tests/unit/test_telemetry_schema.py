"""The telemetry wire format (chat.telemetry.schema): what it accepts, what it rejects and
why, and that no field could carry free text (message content, names, keys, topics)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from harness.telemetry import HOUR_MS, FakeInstall, conversation

from chat.telemetry import identifiers, schema

NOW = 1_790_000_000_000


def _install() -> FakeInstall:
    return FakeInstall(identifiers.new_id(), token="t")


def _good_batch() -> tuple[FakeInstall, dict[str, Any]]:
    install = _install()
    k_tel, conv = conversation(b"group secret")
    events = [
        install.start(NOW - 1000),
        install.join(NOW - 900, conv),
        install.sent(NOW - 800, k_tel, b"m1", conv),
        install.received(NOW - 700, k_tel, b"m2", conv, lat_ms=120),
        install.confirm(NOW - 600, k_tel, b"m1", "store_seen"),
        install.heartbeat(NOW - 500, sent=1, recv=1),
        install.event("error", NOW - 400, component="store", code="timeout"),
        install.event(
            "gap_detected", NOW - 300, conv_ref=conv, method="seq_gap", n_missing=2, window_s=60
        ),
        install.event("gap_recovered", NOW - 200, conv_ref=conv, n=2, via="store", after_ms=900),
        install.event("session_end", NOW - 100, reason="quit", duration_s=1),
    ]
    return install, install.batch(events, sent_at=NOW)


def test_a_batch_of_every_event_type_is_valid_and_survives_a_json_round_trip() -> None:
    _, batch = _good_batch()
    checked = schema.check_batch(json.loads(json.dumps(batch)), now_ms=NOW)
    assert checked.rejected == ()
    assert [e.type for e in checked.events] == [e["type"] for e in batch["events"]]
    assert {e.type for e in checked.events} | {"conv_leave"} == set(schema.EVENT_TYPES)
    assert [e.to_json() for e in checked.events] == batch["events"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e.update(text="hello"), "unknown field(s): text"),
        (lambda e: e.update(result="delivered!"), "'result' must be one of"),
        (lambda e: e.update(peers_used=-1), "'peers_used' must be from 0"),
        (lambda e: e.update(peers_used=True), "'peers_used' must be a whole number"),
        (lambda e: e.update(msg_ref="Hello world, this is content!!!"), "blinded reference"),
        (lambda e: e.pop("conv_ref"), "'conv_ref' is missing"),
        (lambda e: e.update(t=NOW - 31 * 24 * HOUR_MS), "30 days in the past"),
        (lambda e: e.update(t=NOW + 2 * HOUR_MS), "an hour in the future"),
        (lambda e: e.update(type="chat_text"), "'type' must be one of"),
        (lambda e: e.update(id="not-a-uuid"), "random UUID"),
    ],
)
def test_a_bad_event_is_rejected_alone_with_its_reason(change: Any, reason: str) -> None:
    _, batch = _good_batch()
    change(batch["events"][2])
    checked = schema.check_batch(batch, now_ms=NOW)
    assert len(checked.events) == len(batch["events"]) - 1
    [rejected] = checked.rejected
    assert rejected.index == 2 and reason in rejected.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b.update(cohort="free text"), "unknown field(s): cohort"),
        (lambda b: b.update(schema_version=2), "not supported"),
        (lambda b: b["app"].update(version="0.1 with spaces"), "version token"),
        (lambda b: b["app"].update(platform="amiga"), "'app.platform' must be one of"),
        (lambda b: b["health"]["dropped_total"].update(bogus=1), "unknown key(s): bogus"),
        (lambda b: b.update(events=[{}] * 501), "at most 500 events"),
        (lambda b: b.pop("install_id"), "'install_id' is missing"),
    ],
)
def test_a_bad_envelope_makes_the_whole_batch_invalid(change: Any, reason: str) -> None:
    _, batch = _good_batch()
    change(batch)
    with pytest.raises(schema.SchemaError, match=re.escape(reason)):
        schema.check_batch(batch, now_ms=NOW)


def test_a_repeated_id_or_seq_within_a_batch_is_rejected() -> None:
    install, batch = _good_batch()
    batch["events"].append(dict(batch["events"][0]))
    twin_seq = install.heartbeat(NOW - 50)
    twin_seq["seq"] = batch["events"][1]["seq"]
    batch["events"].append(twin_seq)
    checked = schema.check_batch(batch, now_ms=NOW)
    assert [r.index for r in checked.rejected] == [10, 11]


def test_no_field_can_carry_free_text() -> None:
    """Every string on the wire is an enum, a UUID, a blinded reference or a version token
    without spaces, at most 32 characters: nothing a sentence, a name or a key fits in."""
    for item in schema.all_fields():
        assert isinstance(
            item,
            schema.IntField
            | schema.BoolField
            | schema.EnumField
            | schema.PatternField
            | schema.ObjectField
            | schema.CountsField,
        ), item.name
        if isinstance(item, schema.PatternField):
            for sample in ("a b", "x" * 33, "héllo", "a\nb", "name@host", "/ip4/1.2.3.4"):
                with pytest.raises(schema.SchemaError):
                    item.check(sample, item.name)
        if isinstance(item, schema.EnumField):
            assert all(len(v) <= schema.MAX_STRING and " " not in v for v in item.values)


def test_the_dictionary_names_every_field_with_meaning_and_retention() -> None:
    entries = schema.dictionary()
    wheres = [e.where for e in entries]
    assert len(wheres) == len(set(wheres))
    for kind in schema.EVENT_TYPES.values():
        for item in kind.fields:
            assert f"event.{kind.name}.{item.name}" in wheres
    assert all(e.meaning and e.retention for e in entries if e.where.count(".") <= 2)


def test_blinded_references_match_across_members_and_differ_across_conversations() -> None:
    alice = identifiers.telemetry_key(b"shared group secret")
    bob = identifiers.telemetry_key(b"shared group secret")
    other = identifiers.telemetry_key(b"another group")
    assert identifiers.conv_ref(alice) == identifiers.conv_ref(bob) != identifiers.conv_ref(other)
    assert identifiers.msg_ref(alice, b"m1") == identifiers.msg_ref(bob, b"m1")
    assert identifiers.msg_ref(alice, b"m1") != identifiers.msg_ref(alice, b"m2")
    assert re.fullmatch(r"[0-9a-f]{32}", identifiers.msg_ref(alice, b"m1"))
    assert b"shared group secret".hex() not in identifiers.conv_ref(alice)
    assert identifiers.size_bucket(1023) == "lt1k" and identifiers.size_bucket(70_000) == "gt64k"
    assert identifiers.member_bucket(2) == "2" and identifiers.member_bucket(101) == "gt100"


def test_registration_accepts_a_cohort_code_token_only() -> None:
    assert schema.check_registration({"schema_version": 1, "cohort_code": "wave-1"}) == {
        "schema_version": 1,
        "cohort_code": "wave-1",
    }
    with pytest.raises(schema.SchemaError):
        schema.check_registration({"schema_version": 1, "cohort_code": "my name is Bob"})
    with pytest.raises(schema.SchemaError):
        schema.check_registration({"schema_version": 1, "email": "x"})


def test_the_dictionary_in_docs_telemetry_md_is_the_generated_one() -> None:
    from pathlib import Path

    from chat.telemetry.dictionary import END, START, markdown

    text = (Path(__file__).resolve().parents[2] / "docs" / "telemetry.md").read_text()
    shown = text[text.index(START) : text.index(END) + len(END)]
    assert shown == markdown(), (
        "docs/telemetry.md's dictionary is out of date: paste `python -m "
        "chat.telemetry.dictionary` between its markers"
    )


def test_the_bytes_of_a_batch_carry_no_secret_id_or_marker() -> None:
    """A batch about a conversation whose secret, message ids and names are markers: none of
    them (raw, hex or base64) is in the bytes that would leave, gzip or not."""
    import base64
    import gzip

    secret = b"MARKER-conversation-secret-7f3a"
    message_ids = [b"MARKER-message-id-%d" % n for n in range(3)]
    install = _install()
    k_tel, conv = conversation(secret)
    events = [install.start(NOW - 100), install.join(NOW - 99, conv)]
    events += [install.sent(NOW - 50 + n, k_tel, m, conv) for n, m in enumerate(message_ids)]
    events += [install.received(NOW - 10, k_tel, message_ids[0], conv, lat_ms=5)]
    body = json.dumps(install.batch(events, sent_at=NOW)).encode()
    assert schema.check_batch(json.loads(body), now_ms=NOW).rejected == ()
    for wire in (body, gzip.decompress(gzip.compress(body))):
        for marker in (secret, k_tel, *message_ids):
            for form in (marker, marker.hex().encode(), base64.b64encode(marker)):
                assert form not in wire
        assert b"MARKER" not in wire
