"""The hard bound on probing: at most N probes per block in any window of W seconds (per VP).

Trinocular promises targets a low, bounded load (20 probes per block per hour). Probes of a
round are charged to the round's start time; a round's allowance per block is what the rounds
that started within the last W seconds left of the bound, so every window of W seconds that
holds a set of round starts holds at most N probes to any block. Irregular or short rounds
are handled (the history is a queue of rounds, not a fixed ring). The same counts measure the
load actually sent: the busiest window seen and the mean probes per block per hour.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray

from liveness.monitor.params import TrinocularParams

__all__ = ["ProbeBudget"]


class ProbeBudget:
    """Per-block probe counts of the rounds inside the rate window, and what they allow."""

    def __init__(self, block_count: int, params: TrinocularParams) -> None:
        self._params = params
        self._rounds: deque[tuple[float, NDArray[np.uint8]]] = deque()
        self._in_window = np.zeros(block_count, dtype=np.int32)
        self.max_in_window = 0
        """The most probes any block received within one window so far (measured)."""
        self.total_probes = 0
        self.first_start: float | None = None
        self.last_start: float | None = None
        self.rounds = 0

    def _expire(self, round_start: float) -> None:
        horizon = round_start - self._params.rate_window_s
        while self._rounds and self._rounds[0][0] <= horizon:
            _, counts = self._rounds.popleft()
            self._in_window -= counts

    def allowance(self, round_start: float) -> NDArray[np.int32]:
        """Probes each block may receive in the round starting at ``round_start``."""
        if self.last_start is not None and round_start < self.last_start:
            raise ValueError(f"round_start {round_start} is before the last one {self.last_start}")
        self._expire(round_start)
        left = self._params.max_probes_per_window - self._in_window
        return np.clip(left, 0, self._params.max_probes_per_round).astype(np.int32)

    def record(self, round_start: float, probes: NDArray[np.uint8]) -> None:
        """Charge one round's probes (per block) to its start time."""
        self._expire(round_start)
        counts = probes.astype(np.uint8, copy=True)
        self._rounds.append((round_start, counts))
        self._in_window += counts
        if self._in_window.size:
            self.max_in_window = max(self.max_in_window, int(self._in_window.max()))
        self.total_probes += int(counts.sum(dtype=np.int64))
        if self.first_start is None:
            self.first_start = round_start
        self.last_start = round_start
        self.rounds += 1

    def probes_per_block_hour(self) -> float:
        """Mean probes per block per hour over the rounds so far (each round lasting round_s)."""
        blocks = self._in_window.size
        if not blocks or not self.rounds:
            return 0.0
        hours = self.rounds * self._params.round_s / 3600.0
        return self.total_probes / blocks / hours
