"""Trinocular's belief update: Bayes' rule for one probe per block, over numpy arrays.

B(U) is the belief that a block is up. A positive reply (p) or its absence (n) updates it with

    P(p|U) = A,        P(n|U) = 1 - A,
    P(p|¬U) = (1-l)/|b|,   P(n|¬U) = 1 - (1-l)/|b|,

    B'(U) = P(o|U) B(U) / (P(o|U) B(U) + P(o|¬U) (1 - B(U))),

then B' is clamped to [belief_min, belief_max] so that no run of evidence makes the block
unrecoverable (the clamp bounds how many probes any later decision needs).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from liveness.monitor.params import TrinocularParams

__all__ = ["update_belief"]


def update_belief(
    belief: NDArray[np.float64],
    positive: NDArray[np.bool_],
    availability: NDArray[np.float64],
    params: TrinocularParams,
) -> NDArray[np.float64]:
    """The clamped posterior B'(U) for each block after one probe with outcome ``positive``.

    All three arrays have one entry per probed block; ``availability`` is A(E(b)) (a_oper).
    """
    q_pos = params.p_positive_if_down
    like_up = np.where(positive, availability, 1.0 - availability)
    like_down = np.where(positive, q_pos, 1.0 - q_pos)
    up = like_up * belief
    posterior = up / (up + like_down * (1.0 - belief))
    return np.clip(posterior, params.belief_min, params.belief_max)
