"""Every fuzz target, by name. Importing this imports every decoder under test, so the worker
imports it inside atheris' instrumentation."""

from __future__ import annotations

from fuzz.contract import Target
from fuzz.targets import (
    direct,
    files,
    filter,
    framing,
    http,
    http_server,
    identity,
    lightpush,
    mdns,
    message,
    metadata,
    peer_exchange,
    relay,
    sds,
    store,
    sync,
    telemetry,
    topics,
)

FAMILIES = (
    framing,
    message,
    relay,
    store,
    sync,
    filter,
    lightpush,
    metadata,
    peer_exchange,
    topics,
    direct,
    sds,
    identity,
    files,
    mdns,
    http,
    http_server,
    telemetry,
)
TARGETS: dict[str, Target] = {t.name: t for family in FAMILIES for t in family.TARGETS}
