"""Full-text search over messages (issue 15 item 11): ranked, with a snippet around the
match, in one chat or all, bounded input, and nothing typed read as FTS5 syntax."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from storage.repositories.conversations import Conversation
from storage.repositories.messages import (
    MATCH_END,
    MATCH_START,
    MAX_SEARCH_CHARS,
    MAX_SEARCH_WORDS,
    PageCursor,
    SearchQueryError,
)
from storage.store import Store

MakeConversation = Callable[..., Conversation]


def _say(store: Store, chat: str, number: int, body: str) -> None:
    store.messages.add(
        conversation_id=chat, message_id=f"{chat}-{number}", sender="bob", outgoing=False,
        body=body, sent_at=1_000 + number, state="received", now=1_000 + number,
    )  # fmt: skip


@pytest.fixture
def chats(store: Store, make_conversation: MakeConversation) -> Store:
    store.conversations.add(make_conversation("c1"))
    store.conversations.add(make_conversation("c2"))
    long_one = (
        "so we walked all the way down the hill past the old mill and the bakery and then "
        "at the very end of the road there was the lighthouse again, white and tall, and "
        "we sat there until the sun went down over the water"
    )
    _say(store, "c1", 1, long_one)
    _say(store, "c1", 2, "the lighthouse")
    _say(store, "c2", 3, "meet at the lighthouse café?")
    _say(store, "c2", 4, "Lighthouses are my favourite")
    _say(store, "c2", 5, "nothing to see here")
    return store


def test_every_word_must_occur_best_match_first_with_a_snippet(chats: Store) -> None:
    hits = chats.messages.search_hits("lighthouse")
    assert hits[0].message.message_id == "c1-2"  # the shortest: bm25's best
    assert {h.message.message_id for h in hits} == {"c1-1", "c1-2", "c2-3"}
    long_hit = next(h for h in hits if h.message.message_id == "c1-1")
    # The words around the match, not the whole message; the match marked.
    assert f"{MATCH_START}lighthouse{MATCH_END}" in long_hit.snippet
    assert long_hit.snippet.startswith("…") and long_hit.snippet.endswith("…")
    assert len(long_hit.snippet) < len(long_hit.message.body)
    assert [h.message.message_id for h in chats.messages.search_hits("lighthouse café")] == ["c2-3"]


def test_a_word_ending_in_a_star_matches_words_starting_with_it(chats: Store) -> None:
    found = {h.message.message_id for h in chats.messages.search_hits("LIGHT*")}
    assert found == {"c1-1", "c1-2", "c2-3", "c2-4"}
    assert {h.message.message_id for h in chats.messages.search_hits("cafe")} == {"c2-3"}


def test_one_chat_or_all(chats: Store) -> None:
    assert {h.message.conversation_id for h in chats.messages.search_hits("lighthouse")} == {
        "c1",
        "c2",
    }
    in_c2 = chats.messages.search_hits("lighthouse", "c2")
    assert [h.message.message_id for h in in_c2] == ["c2-3"]
    assert len(chats.messages.search_hits("the", limit=2)) == 2


def test_input_is_bounded_and_never_read_as_query_syntax(chats: Store) -> None:
    with pytest.raises(SearchQueryError, match=f"at most {MAX_SEARCH_CHARS} characters"):
        chats.messages.search_hits("x" * (MAX_SEARCH_CHARS + 1))
    with pytest.raises(SearchQueryError, match=f"at most {MAX_SEARCH_WORDS} words"):
        chats.messages.search_hits(" ".join(["word"] * (MAX_SEARCH_WORDS + 1)))
    for hostile in ['"', "*", "a OR b", "NOT", "body:x", "^light", "light + house", "(", "'"]:
        for hit in chats.messages.search_hits(hostile):  # searched as words, or nothing
            assert MATCH_START in hit.snippet
    assert chats.messages.search_hits("   ") == []
    assert chats.messages.search_hits("c1") == []  # a chat's id is indexed, never searched


def test_reading_on_after_a_message(chats: Store) -> None:
    first = chats.messages.by_message_id("c2", "c2-3")
    assert first is not None
    after = chats.messages.page_after("c2", PageCursor(first.sent_at, first.id), limit=10)
    assert [m.message_id for m in after] == ["c2-4", "c2-5"]
    one = chats.messages.page_after("c2", PageCursor(first.sent_at, first.id), limit=1)
    assert [m.message_id for m in one] == ["c2-4"]
