"""The composer: multi-line input. Enter sends; Alt+Enter or Ctrl+J adds a new line (and
Shift+Enter or Ctrl+Enter, where the terminal reports them: ui/terminal.py); Up on the first
line recalls earlier messages, Down goes forward again.

Near the length limit a counter shows on the composer's border; a text over it is not sent
and stays here (Ctrl+P, "Send in parts", sends it as several messages). Alt with a letter is
a command (Alt+A), never typed, and F6 (theme) is the app's: the keys the help calls global
work from here."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from chat.events import MAX_TEXT_LENGTH
from ui.format import split_message
from ui.widgets.typeahead import MODIFIERS

NEWLINE_KEYS = frozenset({"alt+enter", "ctrl+j", "shift+enter", "ctrl+enter"})
HISTORY_LIMIT = 100
COUNTER_FROM = 0.9
"""The counter shows from this share of the limit on."""


class Composer(TextArea):
    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, limit: int = MAX_TEXT_LENGTH, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.limit = limit
        self.sent_history: list[str] = []
        self._recall: int | None = None
        self._draft = ""

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self._submit()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key.startswith(MODIFIERS) and event.is_printable:
            # Alt+A and the like carry their letter: not typed; it bubbles on to the keys.
            event.prevent_default()
            return
        if event.key == "up" and self.cursor_location[0] == 0 and self.sent_history:
            event.stop()
            event.prevent_default()
            self._step_history(-1)
            return
        if event.key == "down" and self._recall is not None and self._on_last_line():
            event.stop()
            event.prevent_default()
            self._step_history(1)
            return
        await super()._on_key(event)

    def _on_last_line(self) -> bool:
        return self.cursor_location[0] == self.document.line_count - 1

    # ---- the length limit --------------------------------------------------------------
    @property
    def message(self) -> str:
        """What Enter would send."""
        return self.text.strip("\n")

    @property
    def over_limit(self) -> int:
        """Characters beyond the limit (0: it can be sent)."""
        return max(0, len(self.message) - self.limit)

    def on_text_area_changed(self, _: TextArea.Changed) -> None:
        length = len(self.message)
        over = self.over_limit
        if over:
            self.border_subtitle = (
                f"{length:,} / {self.limit:,}: {over:,} too many (Ctrl+P: Send in parts)"
            )
        elif length >= self.limit * COUNTER_FROM:
            self.border_subtitle = f"{length:,} / {self.limit:,}"
        else:
            self.border_subtitle = ""
        self.set_class(bool(over), "-over")

    def parts(self) -> list[str]:
        """The text cut into messages within the limit (at line breaks or spaces)."""
        return split_message(self.message, self.limit)

    def take_parts(self) -> list[str]:
        """The text as messages within the limit, and the composer emptied."""
        parts = self.parts()
        if parts:
            self._remember(self.message)
            self.clear()
        return parts

    # ---- sending and history -----------------------------------------------------------
    def _submit(self) -> None:
        text = self.message
        if not text.strip():
            return
        if self.over_limit:
            self.notify(
                f"Not sent: {self.over_limit:,} characters over the limit of {self.limit:,}. "
                "It stays here: shorten it, or send it in parts (Ctrl+P, Send in parts).",
                severity="warning",
                timeout=10,
            )
            return
        self._remember(text)
        self.clear()
        self.post_message(self.Submitted(text))

    def _remember(self, text: str) -> None:
        if not self.sent_history or self.sent_history[-1] != text:
            self.sent_history.append(text)
            del self.sent_history[:-HISTORY_LIMIT]
        self._recall = None
        self._draft = ""

    def give_back(self, text: str) -> None:
        """A message that could not be sent comes back, before anything typed since."""
        current = self.text
        self.load_text(text if not current.strip() else f"{text}\n{current}")
        self.move_cursor(self.document.end)

    def _step_history(self, step: int) -> None:
        if self._recall is None:
            if step > 0:
                return
            self._draft = self.text
            self._recall = len(self.sent_history)
        self._recall += step
        if self._recall < 0:
            self._recall = 0
        if self._recall >= len(self.sent_history):
            self._recall = None
            self.load_text(self._draft)
        else:
            self.load_text(self.sent_history[self._recall])
        self.move_cursor(self.document.end)
