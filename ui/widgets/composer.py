"""The composer: multi-line input. Enter sends; Alt+Enter (or Ctrl+J) adds a newline;
Up on the first line recalls earlier messages, Down goes forward again."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

NEWLINE_KEYS = frozenset({"alt+enter", "ctrl+j", "shift+enter", "ctrl+enter"})
HISTORY_LIMIT = 100


class Composer(TextArea):
    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
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

    def _submit(self) -> None:
        text = self.text.strip("\n")
        if not text.strip():
            return
        if not self.sent_history or self.sent_history[-1] != text:
            self.sent_history.append(text)
            del self.sent_history[:-HISTORY_LIMIT]
        self._recall = None
        self._draft = ""
        self.clear()
        self.post_message(self.Submitted(text))

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
