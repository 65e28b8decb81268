"""The attacks of issue 13 item 1 on the real `chinwag serve` in a subprocess: one
unauthenticated HTTP/2 request (a DATA frame on a stream the server already answered) used to
end the whole client with exit status 1. Now HTTP/2 is not offered, and the client runs on."""

from __future__ import annotations

import signal
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
from harness.attack import h2_body_after_answer, status_of


@pytest.mark.slow
async def test_http2_requests_with_data_after_the_answer_leave_chinwag_serve_running(
    chinwag: Any,
) -> None:
    chinwag.create_profile("alice")
    served = await chinwag.serve("alice")
    address = urlsplit(served.url)
    assert address.hostname and address.port
    attacks = [("POST", "/v1/chats/" + "0" * 32 + "/messages"), ("GET", "/openapi.json")]
    answers = []
    for method, path in attacks:  # no token: anyone who can connect can do this
        answers.append(await h2_body_after_answer(address.hostname, address.port, method, path))
    await trio.sleep(0.5)  # what used to end the process would have by now
    assert served.process.process.returncode is None, served.process.stderr[-2000:]
    async with served.client() as http:
        assert (await http.get("/v1/identity")).status_code == 200
    # HTTP/2 is not offered: each connection preface was answered in HTTP/1.1.
    assert [status_of(answer) for answer in answers] == [505, 505]
    served.process.stop(signal.SIGTERM)
    assert await served.process.wait() == 0
    assert "Traceback" not in served.process.stderr
