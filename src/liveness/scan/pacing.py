"""Pacing: how many packets may leave now, for a target rate, without busy-waiting.

The allowance is computed from the start time (``rate * elapsed - sent``), so the long-run rate is
exact whatever the batch sizes; between batches the pacer sleeps until at least ``min_batch``
packets are due, which keeps the CPU idle at low rates and the system-call count low at high ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Pacer", "rate_for_bandwidth"]

# Ethernet overhead beyond the frame ZMap also counts: preamble 8 + FCS 4 + inter-frame gap 12.
ETHERNET_OVERHEAD = 24


def rate_for_bandwidth(bits_per_second: float, mean_frame_len: float) -> float:
    """Packets per second that fill ``bits_per_second`` with frames of ``mean_frame_len`` bytes."""
    on_wire = max(mean_frame_len, 60) + ETHERNET_OVERHEAD
    return bits_per_second / (8.0 * on_wire)


class Pacer:
    """Grant batches of packets at ``rate`` per second (None: as fast as the path allows)."""

    def __init__(
        self,
        rate: float | None,
        *,
        max_batch: int,
        granule: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.max_batch = max_batch
        self.granule = granule
        self.clock = clock
        self.sleep = sleep
        self.started: float | None = None
        self.sent = 0
        # At high rates, batch about a millisecond of packets per system call.
        per_ms = int(rate / 1000) if rate else max_batch
        self.min_batch = max(granule, min(max_batch, per_ms - per_ms % granule))

    def grant(self, deadline: float | None = None) -> int:
        """Sleep until a batch is due (or ``deadline`` passes), then return its size in packets.

        Sizes are multiples of ``granule`` (the packets of one target leave together); returns 0
        only when ``deadline`` came first.
        """
        now = self.clock()
        if self.started is None:
            self.started = now
        if self.rate is None:
            return self.max_batch - self.max_batch % self.granule
        while True:
            # The epsilon keeps float rounding at an exact boundary from spinning.
            due = int((now - self.started) * self.rate + 1e-6) - self.sent
            if due >= self.min_batch:
                due = min(due, self.max_batch)
                return due - due % self.granule
            wake = self.started + (self.sent + self.min_batch) / self.rate
            if deadline is not None and wake > deadline:
                if deadline > now:
                    self.sleep(deadline - now)
                return 0
            self.sleep(max(0.0, wake - now))
            now = self.clock()

    def record(self, packets: int) -> None:
        """Count packets actually sent (the next grant depends on it)."""
        self.sent += packets

    def achieved_rate(self) -> float:
        """Packets per second since the first grant."""
        if self.started is None:
            return 0.0
        elapsed = self.clock() - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0
