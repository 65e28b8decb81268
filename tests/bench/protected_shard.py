"""Protected-shard benchmark: CPU per message of signing, and of a relay's validation on a
protected shard against the same messages on an unprotected one.

    python tests/bench/protected_shard.py [--messages N] [--runs R]

Every message is a WakuMessage with a 200-byte payload and its timestamp set (as the relay
benchmark's). Measured in one process, single-threaded, with `time.process_time` (CPU, not
wall): `sign` (ShardKeyPair.sign: signing hash + RFC 6979 ECDSA), and `RelayValidator` verdicts
from the encoded bytes for accepted messages on an open shard, accepted signed messages on a
protected shard, and what an attacker costs a relay: unsigned (refused on length), forged
(a full verification that fails) and stale (refused on the timestamp, before any
verification). Prints one JSON object per line: the median over `runs` of µs per message.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from chat.waku.message import WakuMessage, now_ns  # noqa: E402
from chat.waku.protected import ShardKeyPair  # noqa: E402
from chat.waku.validation import Outcome, RelayValidator  # noqa: E402

OPEN = "/waku/2/rs/42/0"
PROTECTED = "/waku/2/rs/42/7"
PAYLOAD = 200
MINUTE_NS = 60 * 1_000_000_000


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "protected_shard", **fields}), flush=True)


def messages(count: int, timestamp: int) -> list[WakuMessage]:
    return [
        WakuMessage(
            i.to_bytes(8, "big") + bytes(PAYLOAD - 8),
            "/bench/1/protected/proto",
            timestamp=timestamp,
        )
        for i in range(count)
    ]


def cpu_us_per_item(work: Callable[[], int], runs: int) -> tuple[float, int]:
    """Median CPU µs per item over `runs` (work returns how many items it did)."""
    samples = []
    done = 0
    for _ in range(runs):
        started = time.process_time()
        done = work()
        samples.append((time.process_time() - started) / done * 1e6)
    return statistics.median(samples), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # Each validator logs its first rejection per reason; that is not what is measured here.
    logging.getLogger("chat.waku.validation").setLevel(logging.ERROR)
    owner, impostor = ShardKeyPair.generate(), ShardKeyPair.generate()
    now = now_ns()
    plain = messages(args.messages, now)
    signed = [owner.sign(PROTECTED, m).encode() for m in plain]
    inputs = {
        ("open", "accept"): (OPEN, [m.encode() for m in plain]),
        ("protected", "accept"): (PROTECTED, signed),
        ("protected", "signature_length"): (PROTECTED, [m.encode() for m in plain]),
        ("protected", "signature_mismatch"): (
            PROTECTED,
            [impostor.sign(PROTECTED, m).encode() for m in plain],
        ),
        ("protected", "signed_timestamp_out_of_window"): (
            PROTECTED,
            [
                owner.sign(PROTECTED, m).encode()
                for m in messages(args.messages, now - MINUTE_NS * 10)
            ],
        ),
    }

    def sign_all() -> int:
        for message in plain:
            owner.sign(PROTECTED, message)
        return len(plain)

    sign_us, count = cpu_us_per_item(sign_all, args.runs)
    emit(metric="sign_us", value=round(sign_us, 2), messages=count)

    results: dict[tuple[str, str], float] = {}
    for (shard, expect), (topic, datas) in inputs.items():
        validator = RelayValidator(now_ns, protected={PROTECTED: owner.public_key})

        def validate_all(
            topic: str = topic, datas: list[bytes] = datas, validator: RelayValidator = validator
        ) -> int:
            for data in datas:
                validator(topic, data)
            return len(datas)

        us, count = cpu_us_per_item(validate_all, args.runs)
        verdict = validator(topic, datas[0])
        got = "accept" if verdict.outcome is Outcome.ACCEPT else verdict.reason
        assert got == expect, (shard, expect, got)
        results[(shard, expect)] = us
        emit(metric="validate_us", shard=shard, verdict=expect, value=round(us, 2), messages=count)
    overhead = results[("protected", "accept")] - results[("open", "accept")]
    emit(
        metric="summary",
        protection_overhead_us=round(overhead, 2),
        protected_over_open=round(
            results[("protected", "accept")] / results[("open", "accept")], 2
        ),
        messages_per_cpu_second_protected=round(1e6 / results[("protected", "accept")]),
        forged_per_cpu_second=round(1e6 / results[("protected", "signature_mismatch")]),
    )


if __name__ == "__main__":
    main()
