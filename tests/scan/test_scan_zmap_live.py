"""ZMap's run flags on the testbed, through the CLI with real packets from a VP: ``-o - -O json``,
``-N``, ``--no-header-row``, ``--min-hitrate`` (ZMap's 5 s warm-up and 5 s window) and
SIGUSR1/SIGUSR2 changing the measured send rate. The testbed is removed even when a test fails."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from liveness.testbed import Testbed, load_spec

pytestmark = [pytest.mark.root, pytest.mark.slow]

ALLOW = "198.18.0.0/15\n"
DARK = "198.18.64.0/18"  # routed through the testbed's router, but no host lives there


@pytest.fixture(scope="module")
def small() -> Iterator[Testbed]:
    with Testbed(load_spec("small")) as tb:
        yield tb


def _argv(tb: Testbed, tmp_path: Path, targets: list[str], *extra: str) -> list[str]:
    allow = tmp_path / "allow.txt"
    allow.write_text(ALLOW)
    meta = tmp_path / "meta.json"
    return tb.vps["vp1"].scan_argv(targets, allow, "-m", str(meta), "--retransmit-delay", "0",
                                   *extra)  # fmt: skip


def _meta(tmp_path: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((tmp_path / "meta.json").read_text())
    return loaded


def test_json_to_stdout_stops_after_max_results(small: Testbed, tmp_path: Path) -> None:
    argv = _argv(small, tmp_path, small.targets, "-M", "icmp_echoscan", "-o", "-", "-O", "json",
                 "-N", "7", "-r", "2000", "-q")  # fmt: skip
    done = small.run("vp1", argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 7
    rows = [json.loads(line) for line in lines]
    assert {row["probe"] for row in rows} == {"icmp_echo"}
    meta = _meta(tmp_path)
    assert meta["interrupted"] == "max results reached" and meta["rows_written"] == 7
    assert meta["output_module"] == "json" and meta["max_results"] == 7
    assert int(str(meta["packets_sent"])) < 1024  # stopped before the /22 was done


def test_csv_without_header_row(small: Testbed, tmp_path: Path) -> None:
    out = tmp_path / "bare.csv"
    argv = _argv(small, tmp_path, small.targets, "-M", "icmp_echoscan", "-o", str(out),
                 "--no-header-row", "-f", "saddr,classification", "-r", "5000", "-c", "1",
                 "-q")  # fmt: skip
    done = small.run("vp1", argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows and all(row[0].startswith("198.18.") for row in rows)
    assert len(rows) == _meta(tmp_path)["rows_written"]


def test_min_hitrate_aborts_a_mostly_dark_range(small: Testbed, tmp_path: Path) -> None:
    # The live /22 (about 40% answer) among 16384 dark addresses: about 2.4% answer, below 10%
    # from the start; ZMap's rule aborts after the 5 s warm-up and 5 s below.
    out = tmp_path / "dark.csv"
    argv = _argv(small, tmp_path, [*small.targets, DARK], "-M", "icmp_echoscan", "-o",
                 str(out), "--min-hitrate", "10", "-r", "1000", "-q")  # fmt: skip
    started = time.monotonic()
    done = small.run("vp1", argv, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert (
        "scan aborted: hitrate" in done.stderr and "below --min-hitrate 10% for 5 s" in done.stderr
    )
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    meta = _meta(tmp_path)
    assert meta["interrupted"] == "min hitrate"
    assert float(str(meta["hitrate_percent"])) < 10
    assert 10 <= took < 17.4  # 17 s to send everything at 1000 p/s
    sent = int(str(meta["packets_sent"]))
    assert 9_000 <= sent < 13_000  # aborted at about 11 s
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "ts" and len(rows) - 1 == int(str(meta["rows_written"])) > 0


def _rates(status: Path) -> list[tuple[float, float, float]]:
    """(elapsed, packets/s over the last second, rate asked for) per status row."""
    with open(status, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        (float(r["time-elapsed"]), float(r["sent-last-one-sec"]), float(r["send-rate"]))
        for r in rows
    ]


def _wait_for(status: Path, elapsed: float, scan: subprocess.Popen[str]) -> None:
    """Until the status file shows ``elapsed`` seconds of scanning."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and scan.poll() is None:
        if status.exists():
            with open(status, newline="") as handle:
                rows = list(csv.DictReader(handle))
            if rows and float(rows[-1]["time-elapsed"]) >= elapsed:
                return
        time.sleep(0.05)
    raise AssertionError(f"the scan did not reach {elapsed} s")


def _signal(scan: subprocess.Popen[str], which: signal.Signals, times: int) -> None:
    for _ in range(times):  # apart: pending signals of one kind merge into one
        scan.send_signal(which)
        time.sleep(0.1)


def test_sigusr1_and_sigusr2_change_the_measured_rate(small: Testbed, tmp_path: Path) -> None:
    status = tmp_path / "status.csv"
    argv = _argv(small, tmp_path, [DARK, "198.18.128.0/18"], "-M", "icmp_echoscan", "-o",
                 str(tmp_path / "o.csv"), "-r", "2000", "-u", str(status),
                 "-c", "0")  # fmt: skip
    scan = small.popen("vp1", argv, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(status, 2.0, scan)
        _signal(scan, signal.SIGUSR1, 4)
        _wait_for(status, 5.0, scan)
        _signal(scan, signal.SIGUSR2, 4)
        _, stderr = scan.communicate(timeout=30)
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait()
    assert scan.returncode == 0, stderr
    meta = _meta(tmp_path)
    changes = meta["rate_changes"]
    assert isinstance(changes, list)
    assert [c["signal"] for c in changes] == ["SIGUSR1"] * 4 + ["SIGUSR2"] * 4
    high, low = 2000 * 1.05**4, 2000 * 1.05**4 * 0.95**4
    assert changes[3]["to_pps"] == pytest.approx(high)
    assert meta["rate_final_pps"] == pytest.approx(low)
    up, down = changes[3]["t"], changes[7]["t"]
    rates = _rates(status)
    # sent-last-one-sec of status rows a whole second after each change
    before = [sent for t, sent, _ in rates if 1.5 <= t < changes[0]["t"]]
    during = [sent for t, sent, _ in rates if up + 1.2 <= t < changes[4]["t"]]
    after = [sent for t, sent, _ in rates if down + 1.2 <= t < down + 5]
    print(f"measured p/s: {before} -> {during} (4 x SIGUSR1) -> {after} (4 x SIGUSR2)")
    assert before and during and after
    assert sum(before) / len(before) == pytest.approx(2000, rel=0.04)
    assert sum(during) / len(during) == pytest.approx(high, rel=0.04)
    assert sum(after) / len(after) == pytest.approx(low, rel=0.04)
    assert int(str(meta["rate_max_1s_pps"])) <= 1.02 * high + 1
    # The status line shows each change as it happens, and the rate it now keeps.
    assert "liveness: send rate increased from 2000 to 2100 p/s" in stderr
    assert "liveness: send rate decreased from 2431 to 2309 p/s" in stderr
    assert "; rate: 2.43 Kp/s (from 2.00 Kp/s)" in stderr
