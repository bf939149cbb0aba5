"""A(E(b)): the fraction of probes to a block's ever-responsive addresses that succeed.

Trinocular needs A to weigh a negative probe: in a block where 1 in 5 addresses answers, a
silence says little. The estimate is a ratio of decayed sums, positives over probes, kept per
block and updated after each round in which the block was not found down nor left with a
low belief (probes into an outage would teach that the block is sparse, and a long outage
would then hide behind the patience given to sparse blocks). Summing counts before dividing keeps it
consistent under Trinocular's stop-at-first-decision rule (a mean of per-round ratios would
be biased upward, since an up round usually ends at its first positive). The census supplies
the prior: ``availability_prior_probes`` pseudo-probes at the census' fraction.

``a_short`` is that estimate; ``a_oper``, the value used in Bayes, is it clamped to
[availability_min, availability_max].
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from liveness.monitor.params import TrinocularParams

__all__ = ["AvailabilityTracker"]


class AvailabilityTracker:
    """Per-block decayed counts of positive and total probes, and A(E(b)) from them."""

    def __init__(self, initial: NDArray[np.floating], params: TrinocularParams) -> None:
        start = np.clip(np.asarray(initial, dtype=np.float64), 0.0, 1.0)
        self._params = params
        self._total = np.full(start.size, params.availability_prior_probes, dtype=np.float64)
        self._positive = start * params.availability_prior_probes

    @property
    def short(self) -> NDArray[np.float64]:
        """a_short: decayed positives over decayed probes."""
        return self._positive / self._total

    @property
    def operational(self) -> NDArray[np.float64]:
        """a_oper: a_short clamped, the A(E(b)) that the belief update uses."""
        return np.clip(self.short, self._params.availability_min, self._params.availability_max)

    def update(
        self,
        learn: NDArray[np.bool_],
        n_pos: NDArray[np.integer],
        n_neg: NDArray[np.integer],
    ) -> None:
        """Fold one round in: blocks where ``learn`` and that were probed; others keep theirs."""
        probed = n_pos.astype(np.float64) + n_neg
        rows = np.flatnonzero(learn & (probed > 0))
        decay = self._params.availability_decay
        self._positive[rows] = decay * self._positive[rows] + n_pos[rows]
        self._total[rows] = decay * self._total[rows] + probed[rows]
