"""Pacing: how many packets may leave now, for a target rate, without busy-waiting or bursting.

``-r`` is a promise to the networks being probed, so the pacer is a token bucket whose
allowance never accumulates beyond a small burst (``burst_s`` of packets, or about two batches):
an idle second (waiting for retransmissions to fall due, a slow flush, a descheduled process)
is lost, never paid back later as a burst at full speed. In any window of ``T`` seconds at most
``rate * T + burst`` packets leave, so every one-second window stays within 2% of ``-r`` (and
within one target's probes at very low rates).

Between batches the pacer sleeps until at least ``min_batch`` packets are due (about a
millisecond of packets), which keeps the CPU idle at low rates and the system-call count low at
high ones. It also measures what it granted: the busiest trailing one-second window
(``max_1s_rate``), for the scan's metadata.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["Pacer", "rate_for_bandwidth"]

# Ethernet overhead beyond the frame ZMap also counts: preamble 8 + FCS 4 + inter-frame gap 12.
ETHERNET_OVERHEAD = 24
# The most allowance that may build up: 20 ms of packets. It absorbs a late wake-up on a busy
# machine without losing rate, and bounds every one-second window by 1.02 x the rate.
DEFAULT_BURST_S = 0.02


def rate_for_bandwidth(bits_per_second: float, mean_frame_len: float) -> float:
    """Packets per second that fill ``bits_per_second`` with frames of ``mean_frame_len`` bytes."""
    on_wire = max(mean_frame_len, 60) + ETHERNET_OVERHEAD
    return bits_per_second / (8.0 * on_wire)


class Pacer:
    """Grant batches of packets at ``rate`` per second (None: as fast as the path allows).

    ``granule``: grants are multiples of it (one target's probes leave together).
    ``sleep`` is called for every wait, so a caller can do useful work there (the monitor reads
    replies while it waits); it must not return much later than asked.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        max_batch: int,
        granule: int = 1,
        burst_s: float = DEFAULT_BURST_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be > 0 or None, not {rate}")
        self.rate = rate
        self.max_batch = max_batch
        self.granule = granule
        self.clock = clock
        self.sleep = sleep
        self.burst_s = burst_s
        self.started: float | None = None
        self.sent = 0
        self._size_batches()
        self._tokens = 0.0
        self._refilled = 0.0
        self._window: deque[tuple[float, int]] = deque()
        self._window_sum = 0
        self.max_1s = 0
        self.last_sent_at: float | None = None

    def _size_batches(self) -> None:
        rate, granule, max_batch = self.rate, self.granule, self.max_batch
        # At high rates, batch about a millisecond of packets per system call.
        per_ms = int(rate / 1000) if rate else max_batch
        self.min_batch = max(granule, min(max_batch, per_ms - per_ms % granule))
        # Room for a second batch absorbs a late wake-up without losing rate, unless that room
        # would exceed 3% of a second's packets (very low rates, where wake-ups are early
        # enough anyway); more than ``burst_s`` of packets would be a burst.
        slack = min(2 * self.min_batch, int(0.03 * rate)) if rate else 0
        self.burst = max(self.min_batch, slack, int(rate * self.burst_s) if rate else 0)

    def set_rate(self, rate: float) -> None:
        """Change the rate from now on (SIGUSR1/SIGUSR2). The allowance earned so far is counted
        at the old rate and capped by the new burst, so a step never makes a burst: any window
        holds at most what the old rate allowed before the step and the new one after."""
        if self.rate is None or not rate > 0:
            raise ValueError(f"only a paced rate can change, to a rate > 0 (not {rate})")
        if self.started is not None:
            self._refill(self.clock())
        self.rate = rate
        self._size_batches()
        self._tokens = min(self._tokens, float(self.burst))

    def grant(self, deadline: float | None = None) -> int:
        """Sleep until a batch is due (or ``deadline`` passes), then return its size in packets.

        Sizes are multiples of ``granule``; returns 0 only when ``deadline`` came first.
        """
        now = self.clock()
        if self.started is None:
            self.started = now
            self._refilled = now
        if self.rate is None:
            return self.max_batch - self.max_batch % self.granule
        while True:
            self._refill(now)
            # The epsilon keeps float rounding at an exact boundary from spinning.
            available = int(self._tokens + 1e-6)
            if available >= self.min_batch:
                due = min(available, self.max_batch)
                return due - due % self.granule
            wake = now + (self.min_batch - self._tokens) / self.rate
            if deadline is not None and wake > deadline:
                if deadline > now:
                    self.sleep(deadline - now)
                return 0
            self.sleep(max(0.0, wake - now))
            now = self.clock()

    def _refill(self, now: float) -> None:
        assert self.rate is not None
        if now > self._refilled:
            self._tokens = min(float(self.burst), self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now

    def record(self, packets: int) -> None:
        """Count packets actually sent (the allowance shrinks by as many)."""
        if packets <= 0:
            return
        now = self.clock()
        if self.started is None:
            self.started = now
            self._refilled = now
        self.sent += packets
        self.last_sent_at = now
        if self.rate is not None:
            self._refill(now)
            self._tokens -= packets
        self._window.append((now, packets))
        self._window_sum += packets
        while self._window[0][0] <= now - 1.0:
            self._window_sum -= self._window.popleft()[1]
        self.max_1s = max(self.max_1s, self._window_sum)

    @property
    def max_1s_rate(self) -> int:
        """Packets in the busiest trailing one-second window so far."""
        return self.max_1s

    def achieved_rate(self, idle_s: float = 0.0) -> float:
        """Packets per second from the first grant to the last send, less ``idle_s`` (time the
        caller spent with nothing to send, e.g. waiting for retransmissions to fall due)."""
        if self.started is None or self.last_sent_at is None:
            return 0.0
        elapsed = self.last_sent_at - self.started - idle_s
        return self.sent / elapsed if elapsed > 0 else 0.0
