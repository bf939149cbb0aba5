"""The round scheduler against the in-process model: outages, sparse blocks, limits, order."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.monitor import ModelProber, Monitor, TrinocularParams
from liveness.monitor.rounds import DOWN, UNKNOWN, UP

BASE = (198 << 24) | (18 << 16)


def world(
    blocks: int, per_block: int, seed: int = 0
) -> tuple[NDArray[np.uint32], dict[int, NDArray[np.uint32]]]:
    """``blocks`` /24s from 198.18.0.0 with ``per_block`` random ever-responsive addresses."""
    rng = np.random.default_rng(seed)
    bases = (BASE + 256 * np.arange(blocks)).astype(np.uint32)
    members = {
        int(b): (int(b) + rng.choice(np.arange(1, 255), per_block, replace=False)).astype(np.uint32)
        for b in bases
    }
    return bases, members


class Recorder:
    """Wraps a prober and keeps every probed address with the round it belongs to."""

    def __init__(self, inner: ModelProber | None = None) -> None:
        self.inner = inner
        self.round_start = 0
        self.sent: list[tuple[int, NDArray[np.uint32]]] = []

    def probe(self, addresses: NDArray[np.uint32]) -> NDArray[np.bool_]:
        self.sent.append((self.round_start, addresses.copy()))
        if self.inner is None:
            return np.zeros(addresses.size, dtype=bool)
        return self.inner.probe(addresses)


def test_outage_found_within_one_round_and_recovery_too() -> None:
    bases, members = world(200, 40)
    monitor = Monitor(bases, members, vp="a", availability=0.9)
    model = ModelProber(bases, 0.9, seed=1)
    victims = bases[[3, 50, 199]]
    statuses = []
    for round_no in range(12):
        if round_no == 5:
            model.set_up(victims, False)
        if round_no == 8:
            model.set_up(victims, True)
        result = monitor.run_round(model, round_no, 660 * round_no)
        statuses.append(result.status[np.searchsorted(result.block, victims)])
    for round_no in range(12):
        expected = DOWN if 5 <= round_no < 8 else UP
        assert (statuses[round_no] == expected).all(), (round_no, statuses[round_no])


def test_outage_found_within_one_round_from_single_snapshot_prior() -> None:
    """Starting from the default availability (0.5), an A=0.95 block still goes down at once."""
    bases, members = world(50, 30)
    monitor = Monitor(bases, members, vp="a")
    model = ModelProber(bases, 0.95, seed=2)
    for round_no in range(3):
        monitor.run_round(model, round_no, 660 * round_no)
    model.set_up(bases[:10], False)
    result = monitor.run_round(model, 3, 660 * 3)
    assert (result.status[:10] == DOWN).all()
    assert (result.probes[:10] <= 15).all()


def _sparse_downs(sparse_availability: float) -> int:
    bases, members = world(300, 20)
    params = TrinocularParams(sparse_availability=sparse_availability)
    monitor = Monitor(bases, members, vp="a", params=params, availability=0.15)
    model = ModelProber(bases, 0.15, seed=3)
    downs = 0
    for round_no in range(60):
        result = monitor.run_round(model, round_no, 660 * round_no)
        downs += int((result.status == DOWN).sum())
    return downs


def test_sparse_blocks_do_not_flap_to_down() -> None:
    assert _sparse_downs(TrinocularParams().sparse_availability) == 0
    # without full-block scanning the same blocks do flap: the mechanism is what holds them
    assert _sparse_downs(0.0) > 0


def test_sparse_block_goes_down_only_after_every_address_failed() -> None:
    bases, members = world(4, 20)
    monitor = Monitor(bases, members, vp="a", availability=0.15)
    model = ModelProber(bases, 0.15, seed=4)
    for round_no in range(3):
        monitor.run_round(model, round_no, 660 * round_no)
    model.set_up(bases, False)
    negatives = np.zeros(4, dtype=int)
    found_down = np.zeros(4, dtype=bool)
    for round_no in range(3, 80):
        result = monitor.run_round(model, round_no, 660 * round_no)
        negatives += result.n_neg
        down = result.status == DOWN
        # whole sweeps of |E(b)| = 20, enough that 0.85**run < 1e-5: at least 4 sweeps
        assert (negatives[down] >= 80).all()
        found_down |= down
    assert found_down.all()


def test_unknown_when_undecided_after_the_round_limit() -> None:
    bases, members = world(5, 30)
    # low availability and full-block scanning off: 15 negatives cannot reach 0.1
    params = TrinocularParams(sparse_availability=0.0)
    monitor = Monitor(bases, members, vp="a", params=params, availability=0.12)
    result = monitor.run_round(Recorder(), 0, 0)
    assert (result.status == UNKNOWN).all()
    assert (result.probes == 15).all()
    assert (result.n_neg == 15).all()
    assert (result.belief > params.down_threshold).all()


@pytest.mark.parametrize(
    ("round_s", "scaled"), [(660.0, False), (300.0, False), (97.0, False), (10.0, True)]
)
def test_probe_bound_holds_measured_independently(round_s: float, scaled: bool) -> None:
    bases, members = world(30, 40)
    params = TrinocularParams(round_s=round_s, sparse_availability=0.0)
    if scaled:  # emulated time: the window shrinks with the round
        params = params.time_scaled()
        assert params.rate_window_s == pytest.approx(3600 * round_s / 660)
    window = params.rate_window_s
    monitor = Monitor(bases, members, vp="a", params=params, availability=0.12)
    recorder = Recorder()  # never answers: every block probes as much as allowed
    rounds = int(3 * window / round_s)
    for round_no in range(rounds):
        recorder.round_start = int(round_no * round_s)
        monitor.run_round(recorder, round_no, recorder.round_start)
    per_block: dict[int, list[int]] = defaultdict(list)
    for start, addresses in recorder.sent:
        for block in (addresses & np.uint32(0xFFFFFF00)).tolist():
            per_block[block].append(start)
    worst = 0
    for starts in per_block.values():
        times = np.sort(np.asarray(starts))
        # the most probes in any hour-long window, over windows ending at each probe time
        in_window = np.arange(times.size) - np.searchsorted(times, times - window, side="right") + 1
        worst = max(worst, int(in_window.max()))
    assert worst == 20  # the bound is reached (probing is starved) but never exceeded
    assert monitor.max_probes_in_window == 20
    total = sum(len(s) for s in per_block.values())
    mean = total / len(per_block) / (rounds * round_s / 3600)
    assert monitor.probes_per_block_hour() == pytest.approx(mean)
    assert mean * window / 3600 <= 20.0 * (1 + round_s / window)


def test_probe_order_is_a_shuffled_cycle_continuing_across_rounds() -> None:
    bases, members = world(3, 25)
    params = TrinocularParams(sparse_availability=0.0, max_probes_per_window=1000)
    monitor = Monitor(bases, members, vp="a", params=params, availability=0.12)
    recorder = Recorder()
    for round_no in range(5):  # over 50 probes per block (it ends down): two cycles of 25
        monitor.run_round(recorder, round_no, 660 * round_no)
    probed = np.concatenate([a for _, a in recorder.sent])
    sequence = probed[(probed & np.uint32(0xFFFFFF00)) == bases[1]]
    assert sequence.size > 50
    first = sequence[:25]
    assert sorted(first.tolist()) == sorted(members[int(bases[1])].tolist())
    assert (sequence == np.resize(first, sequence.size)).all()
    assert (np.diff(first.astype(np.int64)) > 0).sum() < 24  # not simply ascending

    def order(vp: str, seed: int) -> list[int]:
        other = Monitor(bases, members, vp=vp, params=TrinocularParams(seed=seed))
        rec = Recorder()
        other.run_round(rec, 0, 0)  # one probe per block: the start of each order
        for round_no in range(1, 6):
            other.run_round(rec, round_no, 660 * round_no)
        sent: list[int] = np.concatenate([a for _, a in rec.sent]).tolist()
        return sent

    assert order("a", 1) == order("a", 1)
    assert order("a", 1) != order("b", 1)


def test_unmeasurable_blocks_are_set_apart() -> None:
    bases, members = world(4, 20)
    members[int(bases[2])] = members[int(bases[2])][:14]
    monitor = Monitor(bases, members, vp="a")
    assert monitor.unmeasurable_blocks.tolist() == [int(bases[2])]
    assert monitor.unmeasurable_sizes.tolist() == [14]
    result = monitor.run_round(ModelProber(bases, 0.9), 0, 0)
    assert int(bases[2]) not in result.block.tolist()
    assert result.block.size == 3


def test_csr_input_with_host_octets_equals_mapping_input() -> None:
    bases, members = world(6, 18)
    indptr = np.arange(0, 6 * 18 + 1, 18)
    hosts = np.concatenate([members[int(b)] & 0xFF for b in bases]).astype(np.uint8)
    by_map = Monitor(bases[::-1], members, vp="a")
    by_csr = Monitor(bases, (indptr, hosts), vp="a")
    one, two = Recorder(ModelProber(bases, 0.9, seed=9)), Recorder(ModelProber(bases, 0.9, seed=9))
    first, second = by_map.run_round(one, 0, 0), by_csr.run_round(two, 0, 0)
    assert (first.block == second.block).all()
    assert np.array_equal(
        np.concatenate([a for _, a in one.sent]), np.concatenate([a for _, a in two.sent])
    )


def test_bad_input_is_an_input_error() -> None:
    bases, members = world(2, 20)
    with pytest.raises(InputError, match="/24 base"):
        Monitor(bases + 1, members, vp="a")
    members[int(bases[0])] = members[int(bases[0])] + 256
    with pytest.raises(InputError, match="outside its block"):
        Monitor(bases, members, vp="a")
    with pytest.raises(InputError, match="twice"):
        Monitor(np.concatenate([bases, bases]), {}, vp="a")
