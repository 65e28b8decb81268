"""Shorter re-send timers for lab runs: `chinwag serve --timer-scale F` multiplies the
messenger's waits before a re-send or a store scan (acknowledgement timeout, first retry,
contact request and group invitation re-sends, the periodic store scan) by F, so a scenario of
a minute shows what a client does over ten. The report states the scale it ran with."""

from __future__ import annotations

import dataclasses
import math
import time

from chat.messenger import MessengerConfig


def scaled_timers(config: MessengerConfig, factor: float) -> MessengerConfig:
    if not 0 < factor <= 1:
        raise ValueError(f"timer scale must be in (0, 1], not {factor}")
    if factor == 1:
        return config
    retry = dataclasses.replace(
        config.retry,
        first_delay=config.retry.first_delay * factor,
        ack_timeout=config.retry.ack_timeout * factor,
    )
    requests = dataclasses.replace(
        config.requests, first_resend=config.requests.first_resend * factor
    )
    invites = dataclasses.replace(config.invites, first_resend=config.invites.first_resend * factor)
    checks = dataclasses.replace(
        config.store_checks, scan_every=config.store_checks.scan_every * factor
    )
    return dataclasses.replace(
        config, retry=retry, requests=requests, invites=invites, store_checks=checks
    )


MAX_CLOCK_OFFSET = 86_400.0


@dataclasses.dataclass(frozen=True, slots=True)
class SkewedClock:
    """The machine's wall clock, `offset` seconds off."""

    offset: float

    def __call__(self) -> float:
        return time.time() + self.offset


def skewed_clock(config: MessengerConfig, offset: float) -> MessengerConfig:
    """`chinwag serve --clock-offset S`: the messenger's clock (message timestamps, send and
    receive times, store query windows, every timer) and its relay validator's run `offset`
    seconds off the machine's, as on a machine whose clock is wrong. Trio's timers (monotonic)
    are not affected, as a wrong wall clock does not slow a real machine down."""
    if not math.isfinite(offset) or abs(offset) > MAX_CLOCK_OFFSET:
        raise ValueError(f"clock offset must be within ±{MAX_CLOCK_OFFSET:g} seconds, not {offset}")
    return dataclasses.replace(config, clock=SkewedClock(offset))
