"""``liveness monitor`` end to end with the in-process model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monitor_helpers import census_file, run

from liveness.reach.trinocular import read_trinocular


def test_monitor_with_model_writes_streams_and_json(tmp_path: Path) -> None:
    census = census_file(tmp_path / "census.txt")
    out = tmp_path / "out"
    done = run(
        "monitor", "--vp", "vp1", "--census", str(census), "--rounds", "10",
        "-o", str(out), "--model", "--model-availability", "0.95",
        "--model-outage", "198.18.2.0/24@3-6", "--start", "1700000000", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["measurable"] == 11 and summary["unmeasurable"] == 1
    assert summary["max_probes_in_window"] <= 20
    assert 0 < summary["probes_per_block_hour"] <= 20
    assert (out / "vp1.unmeasurable.txt").read_text() == "198.18.11.0/24\t8\n"
    observations = read_trinocular(out / "vp1.fsdb", vp_names=["vp1"]).to_pylist()
    victim = sorted(
        (row["t0"], row["status"]) for row in observations if row["target"] == "198.18.2.0/24"
    )
    assert victim == [(1700000000, "up"), (1700001980, "down"), (1700003960, "up")]
    assert summary["observation_rows"] == len(observations)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "--model-outage", "198.18.2.0/23@1-2"], "--model-outage"),
        (["--model", "--param", "nosuch=1"], "--param"),
        ([], "no prober chosen"),
    ],
)
def test_bad_usage_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    census = census_file(tmp_path / "census.txt")
    done = run(
        "monitor", "--vp", "v", "--census", str(census), "--rounds", "1", "-o",
        str(tmp_path / "o"), *args,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
