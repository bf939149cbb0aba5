"""The constants of Trinocular's adaptive probing, every one a parameter.

Defaults follow Quan, Heidemann and Pradkin, "Trinocular: Understanding Internet Reliability
Through Adaptive Probing" (SIGCOMM 2013) as commonly implemented; where this package adds a
constant of its own (availability tracking, sparse-block patience) the field says so.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from liveness.errors import InputError
from liveness.reach.trinocular import ROUND_S

__all__ = ["TrinocularParams"]


@dataclass(frozen=True)
class TrinocularParams:
    """Parameters of the monitor (one VP); see the module docstring for their origin."""

    min_ever_responsive: int = 15
    """Blocks with fewer ever-responsive addresses |E(b)| are unmeasurable (Trinocular: 15)."""
    loss_rate: float = 0.01
    """l: probability a probe to a down block still meets a reply (P(p|not U) = (1-l)/|b|)."""
    block_size: int = 256
    """|b|: addresses in a block."""
    belief_min: float = 0.01
    belief_max: float = 0.99
    """Belief B(U) is clamped to [belief_min, belief_max] after every update."""
    initial_belief: float = 0.99
    """B(U) before the first round: an ever-responsive block is assumed up."""
    up_threshold: float = 0.9
    down_threshold: float = 0.1
    """Decide up when B(U) > up_threshold, down when B(U) < down_threshold."""
    max_probes_per_round: int = 15
    """Probes per block per round at most; still undecided after them: unknown."""
    max_probes_per_window: int = 20
    rate_window_s: float = 3600.0
    """Hard bound: at most max_probes_per_window probes per block in any rate_window_s."""
    round_s: float = float(ROUND_S)
    """Round length, seconds (11 minutes)."""
    availability_min: float = 0.1
    availability_max: float = 0.99
    """A(E(b)) used in Bayes (a_oper) is clamped to this range."""
    availability_decay: float = 0.95
    """Per round, history counts of the availability estimate are multiplied by this (ours)."""
    availability_learn_belief: float = 0.5
    """A round teaches availability only if the block ends it not down with B(U) at least
    this: probes into a (suspected) outage would teach that the block is sparse (ours)."""
    availability_prior_probes: float = 20.0
    """Weight, in probes, of the census' availability before any probe is seen (ours)."""
    default_availability: float = 0.5
    """A(E(b)) to start from when the census is a single snapshot (it cannot measure A)."""
    sparse_availability: float = 0.3
    """Blocks with a_oper below this are sparse: down only after all of E(b) failed (ours)."""
    sparse_false_down: float = 1e-5
    """Sparse blocks need as many full sweeps of E(b) failing in a row as make an up block's
    chance of such a run, (1 - a_oper)^run, fall below this (at least one sweep; ours)."""
    seed: int = 0
    """Seeds each block's pseudo-random probe order (mixed with the VP name)."""

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> InputError:
            return InputError(f"monitor parameter {name}: {why}")

        if not 0.0 < self.belief_min < self.down_threshold <= self.up_threshold < self.belief_max:
            raise bad("belief", "need 0 < belief_min < down_threshold <= up_threshold < belief_max")
        if not self.belief_min <= self.initial_belief <= self.belief_max:
            raise bad("initial_belief", "must lie within [belief_min, belief_max]")
        if not 0.0 <= self.loss_rate < 1.0:
            raise bad("loss_rate", "must be in [0, 1)")
        if self.block_size < 1:
            raise bad("block_size", "must be positive")
        if not 0.0 < self.availability_min <= self.availability_max < 1.0:
            raise bad("availability", "need 0 < availability_min <= availability_max < 1")
        if not 0.0 <= self.availability_decay <= 1.0:
            raise bad("availability_decay", "must be in [0, 1]")
        if self.availability_prior_probes <= 0:
            raise bad("availability_prior_probes", "must be positive")
        if not 0.0 < self.sparse_false_down < 1.0:
            raise bad("sparse_false_down", "must be in (0, 1)")
        if not 0.0 < self.default_availability < 1.0:
            raise bad("default_availability", "must be in (0, 1)")
        if not 1 <= self.max_probes_per_round <= 16:
            raise bad("max_probes_per_round", "must be 1..16 (the probe log is 16 bits)")
        if self.max_probes_per_window < 1 or self.rate_window_s <= 0 or self.round_s <= 0:
            raise bad("rate", "max_probes_per_window, rate_window_s and round_s must be positive")
        if self.min_ever_responsive < 1:
            raise bad("min_ever_responsive", "must be at least 1")
        if not 0.0 <= self.availability_learn_belief <= 1.0:
            raise bad("availability_learn_belief", "must be in [0, 1]")
        if not 0.0 <= self.sparse_availability <= 1.0:
            raise bad("sparse_availability", "must be in [0, 1]")
        if self.seed < 0:
            raise bad("seed", "must not be negative")

    @property
    def p_positive_if_down(self) -> float:
        """P(p | not U) = (1 - l) / |b|: a reply from a block that is down."""
        return (1.0 - self.loss_rate) / self.block_size

    def time_scaled(self) -> TrinocularParams:
        """These parameters with the rate window shrunk as rounds are shorter than 660 s.

        For emulation (the testbed runs rounds of seconds): the bound then means 20 probes per
        block per 3600/660 rounds, as in Trinocular's real time. Never for real networks.
        """
        return replace(self, rate_window_s=3600.0 * self.round_s / ROUND_S)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameter names (for CLI ``--param NAME=VALUE``)."""
        return tuple(field.name for field in fields(cls))
