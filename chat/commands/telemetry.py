"""`chinwag telemetry status|show|export|pause|resume|off`: what the profile's opt-in
telemetry holds and sends (docs/telemetry.md). It opens the profile, so it runs while no
`chinwag serve` or chat UI holds it.

    status            level, install, queued and sent bytes, drops, failures
    show              status, plus the sent batches and the next batch byte for byte
    show --dictionary every field that can leave, with its meaning, purpose and retention
    export FILE       all of it as JSON, with every queued event
    pause / resume    stop (or restart) recording and sending; what is queued is kept
    off               opt out: delete the local queue and ask the collector to delete
                      what it holds (now if it can be reached, else at the next start)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from chat.config import Config
from chat.errors import UserError

if TYPE_CHECKING:
    from storage.store import Store

NAME = "telemetry"
HELP = "show what opt-in telemetry holds and sends; pause, resume or opt out"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("status", help="level, install, queued and sent bytes, drops")
    show = actions.add_parser("show", help="status, sent batches and the next batch exactly")
    show.add_argument("--json", action="store_true", help="as JSON")
    show.add_argument(
        "--dictionary", action="store_true", help="every field that can be sent, explained"
    )
    export = actions.add_parser("export", help="everything, with every queued event, as JSON")
    export.add_argument("file", type=Path, help="where to write it ('-' for stdout)")
    actions.add_parser("pause", help="stop recording and sending (what is queued is kept)")
    actions.add_parser("resume", help="send again")
    actions.add_parser(
        "off", help="opt out: delete the queue and ask the collector to delete this install"
    )


def run(args: argparse.Namespace, config: Config) -> int:
    from chat.telemetry.client import view

    if args.action == "show" and args.dictionary:
        print(view.dictionary_text())
        return 0
    from chat.telemetry.client.options import effective
    from chat.telemetry.client.profile import recorded_choice
    from chat.unlock import unlock_profile

    configured = effective(config)
    with unlock_profile(config) as store:
        # The choice made in the chat screen (or by `off`) over the config file's level.
        choice = None if configured.forced_off else recorded_choice(store)
        settings = configured if choice is None else replace(configured, level=choice)
        if args.action in ("status", "show"):
            snapshot = view.snapshot(store, settings)
            if args.action == "show" and args.json:
                print(json.dumps(snapshot, indent=2))
            else:
                print(
                    view.status_text(snapshot)
                    if args.action == "status"
                    else view.show_text(snapshot)
                )
        elif args.action == "export":
            text = view.export_json(view.snapshot(store, settings), store)
            if str(args.file) == "-":
                print(text)
            else:
                try:
                    args.file.write_text(text + "\n", encoding="utf-8")
                except OSError as exc:
                    raise UserError(f"cannot write {args.file}: {exc.strerror}") from None
                print(f"exported to {args.file}")
        elif args.action in ("pause", "resume"):
            value = "1" if args.action == "pause" else None
            store.telemetry_outbox.set_state({"paused": value})
            print(
                "telemetry paused: nothing is recorded or sent until 'chinwag telemetry resume'"
                if value
                else "telemetry resumed"
            )
        else:
            print(_opt_out(store, config, forced_off=settings.forced_off))
    return 0


def _opt_out(store: Store, config: Config, *, forced_off: bool) -> str:
    from chat.telemetry import http
    from chat.telemetry.client.profile import record_choice
    from chat.telemetry.client.service import deletion_acknowledged, opt_out

    opt_out(store)
    record_choice(store, "off")  # the chat screen stays off too (chat/telemetry/client/profile.py)
    request = json.loads(store.telemetry_outbox.state().get("delete_request") or "{}")
    lines = ["the local telemetry queue and sent log are deleted."]
    if forced_off and request.get("collector") and request.get("token"):
        # The kill switch sends nothing at all, deletion requests included.
        lines.append(
            "CHINWAG_TELEMETRY=off: nothing is sent; the collector is asked to delete what it "
            "holds at the next start without it."
        )
    elif request.get("collector") and request.get("token"):
        answer = http.post(
            request["collector"] + "/v1/delete", b"{}", token=request["token"], timeout=10.0
        )
        if deletion_acknowledged(answer):
            store.telemetry_outbox.set_state({"delete_request": None})
            lines.append("the collector deleted what it held of this install.")
        else:
            lines.append(
                "the collector could not be reached; the deletion request is sent at the next "
                "start."
            )
    if config.telemetry.level != "off":
        lines.append(
            f"note: the config file still says [telemetry] level = {config.telemetry.level}; "
            "the chat screen stays off, but set it to off, or the next 'chinwag serve' opts "
            "in again."
        )
    return "\n".join(lines)
