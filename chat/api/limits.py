"""What one client may hold of the API server, and for how long (ARCHITECTURE §10). The
defaults suit a local bot or QA runner and are safe with anyone able to connect; tests pass
tighter ones. docs/operator-guide.md explains each."""

from __future__ import annotations

from dataclasses import dataclass

from chat.waku.admission import AdmissionLimits

MAX_CONNECTIONS = 64
MAX_CONNECTIONS_PER_SOURCE = 32
"""One request runs at a time on a connection, so this also bounds one address's requests
in flight (event streams included)."""
IDLE_TIMEOUT = 5.0
"""Seconds a kept-alive connection may wait for its next request's first byte."""
REQUEST_READ_TIMEOUT = 10.0
"""Seconds from a request's first byte until its head and body are all in (64 KiB in
10 s is 6.5 KB/s: any real client, never a client that trickles bytes)."""
WRITE_TIMEOUT = 10.0
"""Seconds one write may wait for a client that does not read (an event stream too)."""
GRACEFUL_TIMEOUT = 2.0
"""Seconds requests in progress get to finish when the server stops."""
MAX_HEADER_BYTES = 16 * 1024
"""Request line plus headers; a larger head is refused with 431."""


@dataclass(frozen=True, slots=True)
class ApiLimits:
    max_connections: int = MAX_CONNECTIONS
    max_connections_per_source: int = MAX_CONNECTIONS_PER_SOURCE
    idle_timeout: float = IDLE_TIMEOUT
    request_read_timeout: float = REQUEST_READ_TIMEOUT
    write_timeout: float = WRITE_TIMEOUT
    graceful_timeout: float = GRACEFUL_TIMEOUT
    max_header_bytes: int = MAX_HEADER_BYTES

    @property
    def admission(self) -> AdmissionLimits:
        return AdmissionLimits(self.max_connections, self.max_connections_per_source)


DEFAULT_LIMITS = ApiLimits()
