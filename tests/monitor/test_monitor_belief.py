"""The Bayesian belief update against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from liveness.errors import InputError
from liveness.monitor.availability import AvailabilityTracker
from liveness.monitor.belief import update_belief
from liveness.monitor.params import TrinocularParams

PARAMS = TrinocularParams()
Q = 0.99 / 256  # P(p | not U) = (1 - l) / |b| with l = 0.01, |b| = 256


def test_positive_probe_matches_hand_computed_bayes() -> None:
    # B = 0.3, A = 0.2, positive: 0.2*0.3 / (0.2*0.3 + Q*0.7) = 0.06 / (0.06 + 0.00270703)
    out = update_belief(np.array([0.3]), np.array([True]), np.array([0.2]), PARAMS)
    assert out[0] == pytest.approx(0.06 / (0.06 + 0.0038671875 * 0.7), rel=1e-12)
    assert out[0] == pytest.approx(0.956830, abs=1e-6)


def test_negative_probe_matches_hand_computed_bayes() -> None:
    # B = 0.9, A = 0.6, negative: 0.4*0.9 / (0.4*0.9 + (1-Q)*0.1) = 0.36 / 0.45961328 = 0.783267
    out = update_belief(np.array([0.9]), np.array([False]), np.array([0.6]), PARAMS)
    assert out[0] == pytest.approx(0.36 / (0.36 + (1 - Q) * 0.1), rel=1e-12)
    assert out[0] == pytest.approx(0.783267, abs=1e-6)


def test_belief_is_clamped() -> None:
    out = update_belief(
        np.array([0.99, 0.01]), np.array([True, False]), np.array([0.9, 0.9]), PARAMS
    )
    assert out.tolist() == [0.99, 0.01]


def test_vectorised_update_equals_one_by_one() -> None:
    rng = np.random.default_rng(5)
    belief = rng.uniform(0.01, 0.99, 1000)
    replies = rng.random(1000) < 0.5
    avail = rng.uniform(0.1, 0.99, 1000)
    batch = update_belief(belief, replies, avail, PARAMS)
    single = [
        update_belief(belief[i : i + 1], replies[i : i + 1], avail[i : i + 1], PARAMS)[0]
        for i in range(0, 1000, 97)
    ]
    assert np.allclose(batch[::97], single)


@given(
    st.floats(0.05, 0.95),
    st.floats(0.1, 0.95),
    st.lists(st.booleans(), min_size=2, max_size=4),
)
def test_unclamped_updates_commute(start: float, avail: float, outcomes: list[bool]) -> None:
    """Bayes' rule does not care about the order of independent observations."""
    wide = TrinocularParams(belief_min=1e-12, belief_max=1 - 1e-12, initial_belief=0.5)

    def run(seq: list[bool]) -> float:
        belief = np.array([start])
        for outcome in seq:
            belief = update_belief(belief, np.array([outcome]), np.array([avail]), wide)
        return float(belief[0])

    assert run(outcomes) == pytest.approx(run(outcomes[::-1]), rel=1e-9, abs=1e-12)


def test_availability_is_a_ratio_of_decayed_counts() -> None:
    params = TrinocularParams(availability_prior_probes=10.0, availability_decay=0.5)
    tracker = AvailabilityTracker(np.array([0.5, 0.5]), params)
    tracker.update(np.array([True, False]), np.array([3, 3]), np.array([1, 1]))
    # block 0: positives 0.5*5 + 3 = 5.5 over 0.5*10 + 4 = 9; block 1 not learned
    assert tracker.short.tolist() == pytest.approx([5.5 / 9, 0.5])
    tracker.update(np.array([True, True]), np.array([0, 0]), np.array([40, 40]))
    assert tracker.operational.min() == params.availability_min


def test_bad_parameters_are_input_errors() -> None:
    with pytest.raises(InputError, match="belief"):
        TrinocularParams(up_threshold=0.05)
    with pytest.raises(InputError, match="max_probes_per_round"):
        TrinocularParams(max_probes_per_round=0)
