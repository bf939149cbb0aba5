"""The scan loop's parts that need no network: pacing, checkpoint, repeats, status line."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from liveness.errors import InputError
from liveness.probes.pipeline import RepeatTracker
from liveness.scan.checkpoint import Checkpoint
from liveness.scan.pacing import Pacer, rate_for_bandwidth
from liveness.scan.status import StatusReporter, StatusSample, format_duration


class FakeClock:
    """A clock that only moves when the pacer sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds
        self.slept += seconds


@pytest.mark.parametrize("rate", [10.0, 1_000.0, 10_000.0, 250_000.0])
def test_pacer_long_run_rate_is_exact_within_one_percent(rate: float) -> None:
    clock = FakeClock()
    pacer = Pacer(rate, max_batch=16384, granule=9, clock=clock, sleep=clock.sleep)
    sent = 0
    start = clock.now
    while clock.now - start < 10.0:
        grant = pacer.grant()
        assert grant % 9 == 0 and grant > 0
        pacer.record(grant)
        sent += grant
    achieved = sent / (clock.now - start)
    assert abs(achieved - rate) / rate < 0.01


def test_pacer_sleeps_instead_of_spinning_at_low_rate() -> None:
    clock = FakeClock()
    calls = 0

    def counting_clock() -> float:
        nonlocal calls
        calls += 1
        return clock()

    pacer = Pacer(10.0, max_batch=1024, clock=counting_clock, sleep=clock.sleep)
    for _ in range(20):
        pacer.record(pacer.grant())
    # 20 packets at 10 pps: about 2 s slept, and a bounded number of clock reads per grant.
    assert clock.slept == pytest.approx(1.9, abs=0.11)
    assert calls <= 3 * 20


def test_pacer_deadline_returns_zero_without_oversleeping() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, max_batch=10, clock=clock, sleep=clock.sleep)
    pacer.record(pacer.grant())
    assert pacer.grant(deadline=clock.now + 0.25) == 0
    assert clock.slept == pytest.approx(0.25 + 1.0 * 0, abs=1.01)


def _sends_per_window(events: list[tuple[float, int]], window: float = 1.0) -> int:
    """The most packets any ``window``-second span holds (an independent sliding count)."""
    times = np.array([t for t, _ in events])
    sizes = np.cumsum([0] + [n for _, n in events])
    ends = np.searchsorted(times, times + window - 1e-9, side="right")
    return int((sizes[ends] - sizes[np.arange(times.size)]).max())


@pytest.mark.parametrize("rate", [300.0, 5_000.0, 20_000.0, 150_000.0])
def test_an_idle_pause_is_never_paid_back_as_a_burst(rate: float) -> None:
    clock = FakeClock()
    pacer = Pacer(rate, max_batch=16384, granule=9, clock=clock, sleep=clock.sleep)
    events: list[tuple[float, int]] = []
    start = clock.now
    for pause_at in (1.0, 2.5, 4.0):  # send, go idle for 1-3 s (retransmissions not due), resume
        while clock.now - start < pause_at:
            grant = pacer.grant()
            pacer.record(grant)
            events.append((clock.now, grant))
        clock.now += pause_at - 0.5  # idle: nothing asked of the pacer
    end = clock.now + 1.5
    while clock.now < end:
        grant = pacer.grant()
        pacer.record(grant)
        events.append((clock.now, grant))
    busiest = _sends_per_window(events)
    assert busiest <= max(1.03 * rate, rate + 9)
    assert pacer.max_1s_rate == busiest
    # Right after each pause, the first second sends no more than a second's worth.
    assert busiest >= 0.97 * rate


def test_late_wakeups_neither_burst_nor_lose_the_rate() -> None:
    rng = np.random.default_rng(3)
    clock = FakeClock()

    def oversleeping(seconds: float) -> None:  # a loaded machine wakes up to 3 ms late
        clock.sleep(seconds + float(rng.uniform(0.0, 0.003)))

    rate = 100_000.0
    pacer = Pacer(rate, max_batch=16384, granule=9, clock=clock, sleep=oversleeping)
    events: list[tuple[float, int]] = []
    start = clock.now
    while clock.now - start < 5.0:
        grant = pacer.grant()
        pacer.record(grant)
        events.append((clock.now, grant))
    assert _sends_per_window(events) <= 1.03 * rate
    assert pacer.sent / (clock.now - start) >= 0.97 * rate


def test_achieved_rate_leaves_out_idle_time() -> None:
    clock = FakeClock()
    pacer = Pacer(1_000.0, max_batch=1024, clock=clock, sleep=clock.sleep)
    while pacer.sent < 1_000:
        pacer.record(pacer.grant())
    clock.now += 5.0  # waiting for retransmissions
    while pacer.sent < 2_000:
        pacer.record(pacer.grant())
    assert pacer.achieved_rate(idle_s=5.0) == pytest.approx(1_000.0, rel=0.02)
    assert pacer.achieved_rate() < 300


def test_unlimited_rate_grants_whole_batches_in_granules() -> None:
    pacer = Pacer(None, max_batch=16384, granule=9)
    assert pacer.grant() == 16384 - 16384 % 9


def test_bandwidth_to_rate_counts_ethernet_overhead() -> None:
    # 1 Gb/s of minimum-size frames is 1.488 Mpps, the classic line rate.
    assert rate_for_bandwidth(1e9, 60) == pytest.approx(1_488_095, rel=1e-3)


def test_checkpoint_survives_reopen_and_refuses_changed_settings(tmp_path: object) -> None:
    path = f"{tmp_path}/scan.checkpoint"
    settings = {"seed": 7, "probes": ["icmp_echo"], "targets_total": 100}
    first = Checkpoint(path, settings, resume=False)
    first.set(0, 42)
    first.set(1, 17)
    first.close(finished=False)
    again = Checkpoint(path, settings, resume=True)
    assert again.originals_done == 42
    assert again.retransmissions_done(1) == 17
    again.close(finished=False)
    with pytest.raises(InputError, match="seed"):
        Checkpoint(path, {**settings, "seed": 8}, resume=True)
    with pytest.raises(InputError, match="nothing to resume"):
        Checkpoint(f"{tmp_path}/missing", settings, resume=True)


def test_checkpoint_progress_is_visible_to_another_reader_without_close(tmp_path: object) -> None:
    path = f"{tmp_path}/scan.checkpoint"
    live = Checkpoint(path, {"seed": 1}, resume=False)
    live.set(0, 123456)
    # What a process killed now would leave behind: the mapped page, read from the file.
    with open(f"{path}.progress", "rb") as handle:
        raw = handle.read()
    assert np.frombuffer(raw, dtype=np.int64, offset=8)[0] == 123456
    live.close(finished=True)
    with open(f"{path}.json") as handle:
        assert json.load(handle)["finished"] is True


def test_repeat_tracker_marks_repeats_across_and_within_batches() -> None:
    tracker = RepeatTracker()
    probes = np.array([0, 0, 1, 0], dtype=np.int64)
    targets = np.array([5, 6, 5, 5], dtype=np.uint32)
    assert tracker.mark(probes, targets).tolist() == [False, False, False, True]
    again = tracker.mark(np.array([1, 2], dtype=np.int64), np.array([5, 5], dtype=np.uint32))
    assert again.tolist() == [True, False]
    assert tracker.distinct(0) == 2
    assert tracker.distinct(1) == 1
    assert len(tracker.any_probe) == 2


def test_status_line_has_zmap_shape_and_csv(tmp_path: object) -> None:
    stream = io.StringIO()
    csv_path = f"{tmp_path}/status.csv"
    reporter = StatusReporter(["icmp_echo", "tcp_syn:80"], csv_path=csv_path, stream=stream)
    reporter.report(StatusSample(1.0, 50, 100, 100, 30, 30, 0, [20, 10], hits_any=25))
    line = reporter.report(StatusSample(2.0, 100, 100, 200, 60, 60, 0, [40, 20], hits_any=50))
    reporter.close()
    assert line.startswith("0:02 100% (0:00 left); send: 200 100 p/s (100 p/s avg); recv: 60")
    assert "hitrate: 50.00% [icmp_echo 40.0% tcp_syn:80 20.0%]" in line
    with open(csv_path) as handle:
        rows = handle.read().splitlines()
    assert rows[0].startswith("real-time,time-elapsed") and len(rows) == 3
    assert format_duration(3725) == "1:02:05"


def test_a_second_scan_on_the_same_output_is_refused_and_resets_nothing(tmp_path: object) -> None:
    path = f"{tmp_path}/scan.checkpoint"
    running = Checkpoint(path, {"seed": 1}, resume=False)
    running.set(0, 99)
    with pytest.raises(InputError, match="in use by another running scan"):
        Checkpoint(path, {"seed": 2}, resume=False)
    assert running.originals_done == 99
    with open(f"{path}.json") as handle:
        assert json.load(handle)["seed"] == 1
    running.close(finished=False)
