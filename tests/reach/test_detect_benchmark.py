"""The reach benchmark runs at a tiny size, finds its planted island, and round-trips FSDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "reach.py"


def test_benchmark_tiny_run() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCHMARK), "--blocks", "3000", "--fsdb-sample", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(run.stdout)
    assert result["intervals"] > 6 * 3000
    assert result["intervals_per_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["events"]["island"] == 1  # the planted one-day island of one VP
    assert result["events"]["outage"] > 0 and result["events"]["peninsula"] > 0
    assert result["fsdb_sample_same_events"] is True
