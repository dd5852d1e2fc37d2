"""AWS IoT's per-second quotas as counters over one-second windows. Pure.

AWS IoT counts publishes per connection per second (100, in and out), bytes received per
connection per second (512 KiB) and CONNECTs per client ID per second (1)
(https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits). A fixed
one-second window per counter is what "per second" means here: simple, deterministic with an
injected clock, and never more permissive than AWS's own description.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PerSecond"]


@dataclass(slots=True)
class PerSecond:
    """Use of one quota in the current one-second window.

    Attributes:
        limit: how much one window allows.
        window_start: when the current window began (the injected clock's seconds).
        used: how much of it is used.
        refused: how many requests this window refused (a refusal is logged once per window).
    """

    limit: int
    window_start: float = float("-inf")
    used: int = 0
    refused: int = 0

    def take(self, now: float, amount: int = 1) -> bool:
        """Use ``amount`` if the window has room; False (and counted) if it does not."""
        self._roll(now)
        if self.used + amount > self.limit:
            self.refused += 1
            return False
        self.used += amount
        return True

    def add(self, now: float, amount: int = 1) -> bool:
        """Count ``amount`` even past the limit (what the broker sends, and bytes already read).

        Returns:
            True when the window is over its limit afterwards.
        """
        self._roll(now)
        self.used += amount
        return self.used > self.limit

    @property
    def window_end(self) -> float:
        """When the current window ends."""
        return self.window_start + 1.0

    def _roll(self, now: float) -> None:
        if now >= self.window_start + 1.0:
            self.window_start = now
            self.used = 0
            self.refused = 0
