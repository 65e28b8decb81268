"""A TCP server on 127.0.0.1 that answers every connection with the same raw bytes, whatever
was asked: a collector URL that leads to something else (a captive portal's page, a server
that does not speak HTTP, a proxy that cuts the answer short). Runs in a thread, as the
telemetry client's HTTP call does."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CannedHttp:
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2.0)
                try:
                    conn.recv(1 << 20)
                    self.requests += 1
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()


@contextmanager
def canned_http(answer: bytes) -> Iterator[CannedHttp]:
    server = CannedHttp(answer)
    server._thread.start()
    try:
        yield server
    finally:
        server.stop()


def http_answer(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body
