"""Fault injection for relay: drop outgoing frames as a lossy link would.

Built in rather than bolted on, so a tester can run a real client against a real network and
watch its delivery states stay honest while frames vanish (`chinwag serve --drop-frames 0.3`,
scenario tests). A dropped frame counts as sent: the sender cannot tell, exactly as with a
lossy link; the frame is simply never written. Control frames (GRAFT, IHAVE, IWANT) are lost
too, so gossip recovery is exercised.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class RelayFaults:
    drop_rate: float
    """Fraction of outgoing frames lost, 0 to 1."""
    rng: random.Random = field(default_factory=random.Random)
    dropped: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop_rate <= 1.0:
            raise ValueError(f"drop rate must be between 0 and 1, not {self.drop_rate}")

    def lose(self) -> bool:
        """Whether this frame is lost (counted)."""
        if self.drop_rate and self.rng.random() < self.drop_rate:
            self.dropped += 1
            return True
        return False
