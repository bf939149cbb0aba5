"""ZMap's run limits and mid-scan changes through the in-memory transport (no root, every frame
timed): -N/--max-results, --min-hitrate, -O, --no-header-row, and SIGUSR1/SIGUSR2 changing the
rate by 5% without a burst. The same flags on real packets: tests/scan/test_scan_zmap_live.py."""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from numpy.typing import NDArray

from liveness.net.transport import MemoryTransport
from liveness.output import read_replies
from liveness.probes import parse_probes
from liveness.probes.context import ScanContext
from liveness.probes.synth import synthesize
from liveness.scan import loop
from liveness.scan.pacing import Pacer
from liveness.scan.status import HitrateGuard, StatusSample
from liveness.targets import TargetSpace

SOURCE = 0xC612FF01  # 198.18.255.1


def _echo(frames: NDArray[np.uint8], lengths: NDArray[np.uint32]) -> tuple[Any, Any]:
    replies = synthesize(frames, "echo_reply")
    return replies, np.full(len(replies), replies.shape[1], np.uint32)


def _one_in(every: int) -> Any:
    """A responder for a mostly dark range: one target in ``every`` answers."""

    def answer(frames: NDArray[np.uint8], lengths: NDArray[np.uint32]) -> tuple[Any, Any]:
        last = frames[:, 33].astype(np.int64) + 256 * frames[:, 32].astype(np.int64)
        chosen = frames[last % every == 0]
        if not len(chosen):
            return np.zeros((0, frames.shape[1]), np.uint8), np.zeros(0, np.uint32)
        return _echo(chosen, lengths)

    return answer


def _settings(tmp_path: Path, cidr: str, transport: MemoryTransport, **kw: Any) -> Any:
    ctx = ScanContext.from_seed(
        5, src_ip=SOURCE, src_mac=b"\x02" * 6, gw_mac=b"\x04" * 6, max_attempts=1
    )
    defaults: dict[str, Any] = {
        "rate": 20_000.0,
        "cooldown": 0.3,
        "retransmit_delay": 0.0,
        "retransmissions": 0,
        "quiet": True,
        "metadata_path": str(tmp_path / "meta.json"),
        "output": str(tmp_path / "out.csv"),
        "drop_privileges": False,
    }
    return loop.ScanSettings(
        space=TargetSpace.from_options([cidr], default_blocklist=False),
        probes=parse_probes("icmp_echo"),
        context=ctx,
        seed=5,
        ifname="memory",
        transport=transport,
        **(defaults | kw),
    )


def _csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_max_results_leaves_exactly_n_rows_and_stops_the_scan(tmp_path: Path) -> None:
    transport = MemoryTransport(responder=_echo)
    settings = _settings(tmp_path, "198.18.0.0/20", transport, rate=4_000.0, max_results=100)
    meta = loop.run_scan(settings)
    rows = _csv_rows(tmp_path / "out.csv")
    assert rows[0][:3] == ["ts", "probe", "target"] and len(rows) == 1 + 100
    assert all(len(row) == len(rows[0]) for row in rows)  # complete lines only
    assert meta["rows_written"] == 100 and meta["max_results"] == 100
    assert meta["interrupted"] == "max results reached"
    assert meta["packets_sent"] < 4096 / 2  # it stopped long before the end of the range
    assert json.loads((tmp_path / "meta.json").read_text())["interrupted"] == meta["interrupted"]


def test_max_results_counts_rows_after_the_output_filter(tmp_path: Path) -> None:
    transport = MemoryTransport(responder=_echo)
    settings = _settings(
        tmp_path,
        "198.18.0.0/22",
        transport,
        rate=4_000.0,
        output=str(tmp_path / "out.parquet"),
        output_filter="saddr = 198.18.0.7 || saddr = 198.18.1.9",
        max_results=1,
    )
    meta = loop.run_scan(settings)
    table = pa.Table.from_batches(list(read_replies(settings.output)))
    assert table.num_rows == 1 and meta["rows_written"] == 1


def test_output_module_overrides_the_extension_and_no_header_row(tmp_path: Path) -> None:
    transport = MemoryTransport(responder=_echo)
    json_out = tmp_path / "named.csv"
    loop.run_scan(
        _settings(tmp_path, "198.18.0.0/28", transport, output=str(json_out), output_module="json")
    )
    lines = json_out.read_text().splitlines()
    assert len(lines) == 16 and {json.loads(line)["reply"] for line in lines} == {"echo_reply"}
    bare = tmp_path / "bare.csv"
    meta = loop.run_scan(
        _settings(
            tmp_path, "198.18.0.0/28", MemoryTransport(responder=_echo), output=str(bare),
            header=False, fields=["saddr", "classification"],
        )
    )  # fmt: skip
    rows = _csv_rows(bare)
    assert len(rows) == 16 and all(row[1] == "echoreply" for row in rows), rows[:2]
    assert meta["header_row"] is False


def test_min_hitrate_aborts_a_mostly_dark_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ZMap's 5 s warm-up and 5 s window, shortened here (test_hitrate_guard_follows_zmap and
    # the live test keep ZMap's timing).
    fast = functools.partial(HitrateGuard, warmup_s=0.5, window_s=1.0)
    monkeypatch.setattr(loop, "HitrateGuard", fast)
    transport = MemoryTransport(responder=_one_in(50))
    settings = _settings(tmp_path, "198.18.0.0/18", transport, rate=2_000.0, min_hitrate=10.0)
    meta = loop.run_scan(settings)
    assert meta["interrupted"] == "min hitrate"
    said = re.fullmatch(
        r"hitrate (\d\.\d\d)% stayed below --min-hitrate 10% for 1 s", meta["aborted"]
    )
    assert said and float(said[1]) < 10, meta["aborted"]
    assert meta["hitrate_percent"] == pytest.approx(2.0, abs=0.6)
    assert 2_000 < meta["packets_sent"] < 8_000  # ~2.5 s of sending out of 8 s
    rows = _csv_rows(tmp_path / "out.csv")
    assert len(rows) - 1 == meta["rows_written"] > 0  # the output is complete
    assert loop.EXIT_STATUS["min hitrate"] == 1


def test_min_hitrate_lets_a_lively_range_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "HitrateGuard", functools.partial(HitrateGuard, warmup_s=0.3))
    settings = _settings(
        tmp_path, "198.18.0.0/21", MemoryTransport(responder=_echo), rate=2_000.0, min_hitrate=90
    )
    meta = loop.run_scan(settings)
    assert meta["interrupted"] is None and meta["packets_sent"] == 2048


def _sample(elapsed: float, done: int, hits: int) -> StatusSample:
    return StatusSample(elapsed, done, 10_000, done, hits, hits, 0, [hits], hits_any=hits)


def test_hitrate_guard_follows_zmap() -> None:
    """monitor.c: no judgement in the first 5 s; abort after 5 s below, a recovery resets."""
    guard = HitrateGuard(5.0)
    assert not any(guard.check(_sample(t, 100 * t, 0)) for t in range(1, 6))  # warm-up
    assert not any(guard.check(_sample(t, 100 * t, 0)) for t in range(6, 11))
    assert guard.check(_sample(11, 1100, 0))  # 5 s below (6 .. 11)
    guard = HitrateGuard(5.0)
    verdicts = [guard.check(_sample(t, 100 * t, 0)) for t in range(6, 10)]
    verdicts.append(guard.check(_sample(10, 1000, 60)))  # 6%: back above, the window restarts
    verdicts += [guard.check(_sample(t, 100 * t, 60)) for t in range(11, 15)]
    assert not any(verdicts)


def test_a_rate_step_keeps_every_window_within_the_rates_asked() -> None:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    pacer = Pacer(1000.0, max_batch=64, clock=lambda: clock[0], sleep=sleep)
    times: list[float] = []
    for _ in range(3000):
        if len(times) == 1000:
            pacer.set_rate(1050.0)
        if len(times) == 2000:
            pacer.set_rate(997.5)
        granted = pacer.grant()
        pacer.record(granted)
        times += [clock[0]] * granted
    stamps = np.array(times)
    ends = np.searchsorted(stamps, stamps + 1.0, side="left")
    assert int((ends - np.arange(stamps.size)).max()) <= 1050 * 1.02
    near_step = np.searchsorted(stamps, stamps + 0.05, side="left") - np.arange(stamps.size)
    assert near_step.max() <= 0.05 * 1050 + pacer.burst  # no burst at a step


def _rate(times: NDArray[np.float64], start: float, end: float) -> float:
    t0 = times.min()
    return float(((times >= t0 + start) & (times < t0 + end)).sum() / (end - start))


def test_sigusr1_and_sigusr2_change_the_rate_by_5_percent_each(tmp_path: Path) -> None:
    transport = MemoryTransport(responder=None)
    settings = _settings(
        tmp_path, "198.18.0.0/18", transport, rate=2_000.0, max_targets=9_000,
        status_csv=str(tmp_path / "status.csv"),
    )  # fmt: skip

    def kick(name: signal.Signals, times: int) -> None:
        for _ in range(times):  # apart: pending standard signals of one kind merge into one
            os.kill(os.getpid(), name)
            time.sleep(0.05)

    timers = [
        threading.Timer(1.0, kick, (signal.SIGUSR1, 4)),
        threading.Timer(2.5, kick, (signal.SIGUSR2, 4)),
    ]
    for timer in timers:
        timer.start()
    try:
        meta = loop.run_scan(settings)
    finally:
        for timer in timers:
            timer.cancel()
    changes = meta["rate_changes"]
    assert [c["signal"] for c in changes] == ["SIGUSR1"] * 4 + ["SIGUSR2"] * 4
    high, low = 2_000 * 1.05**4, 2_000 * 1.05**4 * 0.95**4
    assert changes[3]["to_pps"] == pytest.approx(high)
    assert meta["rate_final_pps"] == pytest.approx(low)
    times = transport.times()
    before, during, after = _rate(times, 0.1, 0.9), _rate(times, 1.3, 2.3), _rate(times, 2.8, 3.6)
    print(f"measured p/s: {before:.0f} -> {during:.0f} (4 x SIGUSR1) -> {after:.0f} (4 x SIGUSR2)")
    assert before == pytest.approx(2_000, rel=0.04)
    assert during == pytest.approx(high, rel=0.04)
    assert after == pytest.approx(low, rel=0.04)
    ends = np.searchsorted(times, times + 1.0, side="left")
    assert int((ends - np.arange(times.size)).max()) <= 1.02 * high  # never above what was asked
    with open(tmp_path / "status.csv", newline="") as handle:
        status = list(csv.DictReader(handle))
    asked = {round(float(row["send-rate"])) for row in status}
    assert {round(high), round(low)} <= asked
