"""Telling the user about new messages in chats they are not looking at: the terminal bell,
or a desktop notification through `notify-send` where it exists (config: [notifications])."""

from __future__ import annotations

import asyncio
import logging
import shutil

log = logging.getLogger(__name__)


async def desktop_notification(title: str, body: str) -> bool:
    """Best effort: False when there is no notifier; never raises."""
    program = shutil.which("notify-send")
    if program is None:
        return False
    try:
        process = await asyncio.create_subprocess_exec(
            program,
            "--app-name=chinwag",
            title,
            body,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.wait_for(process.wait(), 5)
    except (OSError, TimeoutError) as exc:
        log.info("desktop notification failed: %s", exc)
        return False
    return process.returncode == 0
