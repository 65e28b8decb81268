"""The field a contact link is pasted into: all of a paste, cleaned.

A link copied off a screen where it wrapped comes as several lines, often with the box
it was drawn in; Textual's Input keeps only the first line of a paste. This one keeps every
line and drops the whitespace and frame characters (chat.session.clean_link), so what
lands in the field is the link."""

from __future__ import annotations

from textual import events
from textual.widgets import Input

from chat.session import clean_link


class LinkInput(Input):
    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()  # not Input's paste, which keeps the first line only
        link = clean_link(event.text)
        if not link:
            return
        start, end = self.selection
        if start == end:
            self.insert_text_at_cursor(link)
        else:
            self.replace(link, *sorted((start, end)))
