"""Search messages: over every chat or only the open one, as you type. Each result shows its
chat, sender and time, and the words around the match with the matched words marked; Enter
opens the conversation at that message (the screen returns a `SearchChoice`).

Keys: type to search (`word*` finds words starting with it), Down moves to the results,
Ctrl+O switches between the open chat and every chat, Enter opens, Esc closes."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, OptionList, Static
from textual.widgets.option_list import Option

from chat.errors import UserError
from chat.events import SearchResultView
from ui.format import clock, day_key, day_label
from ui.host import host

SEARCH_DELAY = 0.25
"""Seconds of quiet typing before a search runs (each key restarts the wait)."""
RESULTS = 50
"""Results shown at most, best first."""


@dataclass(frozen=True)
class SearchChoice:
    """The message the user chose: open its chat at it."""

    chat_id: str
    message_id: str


def result_text(result: SearchResultView, now: float, *, own_name: str = "you") -> Text:
    """Two lines: the chat, when, and whether we wrote it; then the words around the match,
    the matched words marked."""
    day = day_key(result.timestamp)
    when = clock(result.timestamp)
    if day != day_key(now):
        when = f"{day_label(day, day_key(now))} {when}"
    text = Text()
    text.append(result.chat_name or result.chat_id[:8], style="bold")
    text.append(f"  ·  {when}" + (f"  ·  {own_name}" if result.outgoing else ""), style="dim")
    text.append("\n")
    snippet = Text(result.snippet.replace("\n", " "))
    for start, end in result.highlights:
        snippet.stylize("reverse bold", start, end)
    text.append_text(snippet)
    return text


class SearchScreen(ModalScreen[SearchChoice | None]):
    DEFAULT_CSS = """
    SearchScreen { align: center middle; }
    #search-box { width: 100; max-width: 100%; height: 90%; }
    #search-results { height: 1fr; margin-top: 1; }
    #search-status { height: auto; min-height: 1; color: $text-muted; }
    #search-scope { border: none; padding: 0; height: 1; }
    """
    AUTO_FOCUS = "#search-input"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+o", "toggle_scope", "This chat / all"),
        Binding("down", "to_results", "Results", show=False),
    ]

    def __init__(self, chat_id: str | None = None, chat_name: str = "") -> None:
        super().__init__()
        self.chat_id = chat_id
        self.chat_name = chat_name
        self.results: list[SearchResultView] = []
        self.searched = ""
        """The query the shown results are for."""
        self._sent_to_results = False
        """Enter in the field has moved the focus to the results (the move itself comes later)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box", classes="dialog"):
            yield Static("Search messages", classes="dialog-title")
            yield Input(
                id="search-input",
                placeholder="words to find (word* finds words starting with it)",
            )
            if self.chat_id is not None:
                yield Checkbox(f"only in {self.chat_name}", id="search-scope")
            yield Static("Type a word to search every message.", id="search-status")
            yield OptionList(id="search-results")
            yield Static(
                "Enter opens it in its chat  ·  Ctrl+O this chat / all  ·  Esc closes",
                classes="muted",
            )

    @property
    def scope(self) -> str | None:
        """The chat searched, or None for every chat."""
        if self.chat_id is None or not self.query_one("#search-scope", Checkbox).value:
            return None
        return self.chat_id

    # ---- searching -----------------------------------------------------------------------
    @on(Input.Changed, "#search-input")
    def _typed(self) -> None:
        self._sent_to_results = False
        self.search_soon()

    @on(Checkbox.Changed, "#search-scope")
    def _scope_changed(self) -> None:
        self.search_soon(delay=0.0)

    @on(Input.Submitted, "#search-input")
    async def _submitted(self) -> None:
        options = self.query_one(OptionList)
        if self._sent_to_results and self.results and options.highlighted is not None:
            # Enter, Enter typed quickly: both reached the field before the first moved the
            # focus (it moves later), so this one was meant for the results.
            self._open(options.highlighted)
            return
        if not (self.results and self.searched == self.query_one("#search-input", Input).value):
            await self.search()  # the results shown are not for these words (yet)
        if self.results:
            options.focus()
            self._sent_to_results = True

    @on(events.DescendantFocus)
    def _focus_moved(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, Input):  # back in the field: Enter goes to the results again
            self._sent_to_results = False

    @work(exclusive=True, group="search")
    async def search_soon(self, delay: float = SEARCH_DELAY) -> None:
        await asyncio.sleep(delay)
        await self.search()

    async def search(self) -> None:
        query = self.query_one("#search-input", Input).value
        status = self.query_one("#search-status", Static)
        app = host(self)
        source = app.chat_source()
        if not query.strip() or source is None:
            self.show_results([], query)
            status.update("Type a word to search every message.")
            return
        call = functools.partial(source.search, query, chat_id=self.scope, limit=RESULTS)
        try:
            results = await app.bridge.call(call)
        except UserError as exc:  # a query that cannot be searched: say why, here
            self.show_results([], query)
            status.update(str(exc).capitalize())
            return
        self.show_results(results, query)
        where = f"in {self.chat_name}" if self.scope else "in every chat"
        if not results:
            status.update(f"No message {where if self.scope else 'in any chat'} has these words.")
        else:
            more = " (the best ones)" if len(results) == RESULTS else ""
            status.update(f"{len(results)} message(s) {where}{more}; Enter opens one.")

    def show_results(self, results: list[SearchResultView], query: str) -> None:
        self.results = results
        self.searched = query
        options = self.query_one(OptionList)
        options.clear_options()
        now = host(self).clock()
        options.add_options([Option(result_text(r, now), id=str(i)) for i, r in enumerate(results)])
        if results:
            options.highlighted = 0

    # ---- choosing ------------------------------------------------------------------------
    @on(OptionList.OptionSelected, "#search-results")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self._open(event.option_index)

    def _open(self, index: int) -> None:
        result = self.results[index]
        self.dismiss(SearchChoice(result.chat_id, result.message_id))

    def action_to_results(self) -> None:
        if self.results:
            self.query_one(OptionList).focus()

    def action_toggle_scope(self) -> None:
        if self.chat_id is not None:
            self.query_one("#search-scope", Checkbox).toggle()

    def action_close(self) -> None:
        self.dismiss(None)
