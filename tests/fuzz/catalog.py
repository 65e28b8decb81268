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
    relay,
    sds,
    store,
    topics,
)

FAMILIES = (
    framing,
    message,
    relay,
    store,
    filter,
    lightpush,
    metadata,
    topics,
    direct,
    sds,
    identity,
    files,
    mdns,
    http,
    http_server,
)
TARGETS: dict[str, Target] = {t.name: t for family in FAMILIES for t in family.TARGETS}
