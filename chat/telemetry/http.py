"""The uploader's HTTP: one POST, run in a worker thread (the standard library's client, so
the client needs no extra dependency). Sans-trio: the service calls it off the loop, and a
collector that never answers costs a worker thread for at most `timeout`, never the loop."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

MAX_ANSWER = 64 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    """0: the collector could not be reached (refused, timed out, DNS)."""
    body: bytes = b""
    retry_after: float | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def post(
    url: str,
    body: bytes,
    *,
    token: str | None = None,
    gzip: bool = False,
    timeout: float = 10.0,
) -> Answer:
    headers = {"Content-Type": "application/json", "User-Agent": "chinwag-telemetry"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if gzip:
        headers["Content-Encoding"] = "gzip"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read(MAX_ANSWER))
    except urllib.error.HTTPError as error:
        retry = error.headers.get("Retry-After") if error.headers else None
        try:
            body = error.read(MAX_ANSWER)
        except (OSError, HTTPException):
            body = b""
        return Answer(error.code, body, _seconds(retry))
    except (urllib.error.URLError, OSError, ValueError, HTTPException):
        # HTTPException: the answer was not HTTP (BadStatusLine), or cut short.
        return Answer(0)


def _seconds(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())
