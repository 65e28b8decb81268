"""Keys as the terminal sends them (bytes through ui.terminal.KeyParser, the parser the Linux
driver reads with): Alt+Enter makes a new line, and the keys the help calls global work from
the composer. tests/ui/test_tmux_keys.py checks the same in a real tmux."""

from __future__ import annotations

import asyncio
import inspect

from harness.terminal import ALT_ENTER, CTRL_J, ENTER, alt, parse, send_bytes
from textual.app import App, ComposeResult
from textual.drivers import linux_driver
from textual.events import Key

from ui.terminal import KeyParser, use_key_parser
from ui.widgets.composer import Composer


class ComposerApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def compose(self) -> ComposeResult:
        yield Composer()

    def on_composer_submitted(self, event: Composer.Submitted) -> None:
        self.sent.append(event.text)


def keys(data: str) -> list[str]:
    return [event.key for event in parse(data) if isinstance(event, Key)]


def test_the_parser_reads_alt_enter_as_alt_enter() -> None:
    assert keys(ALT_ENTER) == ["alt+enter"]  # ESC CR: tmux, xterm (metaSendsEscape), VTE
    assert keys("\x8d") == ["alt+enter"]  # CR with the eighth bit: xterm's eightBitInput
    assert keys("a\x1b\rb") == ["a", "alt+enter", "b"]
    assert keys(ENTER) == ["enter"] and keys(CTRL_J) == ["ctrl+j"]
    assert keys("\x1b[13;3u") == ["alt+enter"]  # the kitty protocol, unchanged
    assert keys("\x1b[13;2u") == ["shift+enter"]
    assert keys(alt("a")) == ["alt+a"]


def test_the_linux_driver_reads_keys_with_our_parser() -> None:
    # The driver builds its parser from its module's name in its input thread; if Textual
    # stops doing so, Alt+Enter would silently send again: this fails instead.
    assert "XTermParser(" in inspect.getsource(linux_driver.LinuxDriver.run_input_thread)
    use_key_parser()
    assert linux_driver.XTermParser is KeyParser  # type: ignore[attr-defined]


def test_alt_enter_from_the_terminal_starts_a_new_line_and_enter_sends() -> None:
    async def scenario() -> None:
        app = ComposerApp()
        async with app.run_test() as pilot:
            app.query_one(Composer).focus()
            await pilot.pause()
            send_bytes(app, "hi", ALT_ENTER, "yo", CTRL_J, "there", ENTER)
            await pilot.pause(0.2)
            assert app.sent == ["hi\nyo\nthere"]
            send_bytes(app, alt("a"), alt("b"), "c")  # Alt+letter is a command, not a letter
            await pilot.pause(0.2)
            assert app.query_one(Composer).text == "c"

    asyncio.run(scenario())
