"""Every string of every request body is Unicode text (issue 13 item 6): the one place the API
parses bodies joins surrogate pairs and refuses a lone surrogate with a 400 naming the field;
no error sentence can itself fail to encode."""

from __future__ import annotations

import json

import pytest

from chat.api.protocol import ApiError, Request, error_response

ALLOWED = frozenset({"text", "reply_to", "link"})


def _parse(body: bytes) -> dict[str, object]:
    return Request("POST", "/x", {}, {}, body).json_object(allowed=ALLOWED)


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (b'{"text": "a\\ud800b"}', "'text' is not Unicode text: it has a lone surrogate "
                                   "(U+D800) at character 2"),
        (b'{"reply_to": "\\udfff"}', "'reply_to' is not Unicode text"),
        (b'{"text": ["ok", {"deep": "\\udc00"}]}', "'text' is not Unicode text"),
        (b'{"link": "x\xed\xa0\x80"}', "'link' is not Unicode text"),  # CESU-8 bytes
        (b'{"te\\ud800xt": "a"}', "a field name of the request body is not Unicode text"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_anywhere_is_a_400_naming_where(body: bytes, phrase: str) -> None:
    with pytest.raises(ApiError) as caught:
        _parse(body)
    assert caught.value.status == 400
    assert phrase in caught.value.message
    assert caught.value.message.endswith("(a surrogate is only valid as half of a pair).")


def test_surrogate_pairs_are_joined_into_their_character() -> None:
    assert _parse(b'{"text": "hi \\ud83d\\ude00", "link": "\\u00e9"}') == {
        "text": "hi \U0001f600",
        "link": "\u00e9",
    }
    assert _parse(b'{"text": "x\xed\xa0\xbd\xed\xb8\x80"}') == {"text": "x\U0001f600"}


def test_error_sentences_always_encode() -> None:
    response = error_response(400, "unknown field: \ud800.")
    assert json.loads(response.body) == {"error": "unknown field: \ufffd."}
