"""End to end on the testbed: census scan, live monitoring from six VPs through a schedule with
an outage, a peninsula and an island, then the detectors, compared with the schedule.

The schedule is the shipped ``connectivity`` one compressed to rounds of 4 s
(``connectivity_fast.toml`` beside this file), so the run takes about 80 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liveness.demo.connectivity import match_schedule, run_connectivity_demo
from liveness.reach.detect import DetectParams, detect
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.testbed.truth_schema import SCHEDULE_SCHEMA

FAST_SPEC = Path(__file__).with_name("connectivity_fast.toml")
ROUND_S = 4.0
ALL_VPS = ["vp1", "vp2", "vp3", "vp4", "vp5", "vp6"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One demo run shared by the root tests (built only when they are not skipped)."""
    out = tmp_path_factory.mktemp("monitor-e2e")
    return run_connectivity_demo(out, spec=FAST_SPEC, round_s=ROUND_S)


@pytest.mark.root
@pytest.mark.slow
def test_every_scheduled_event_is_found_and_nothing_else(demo_run: dict[str, Any]) -> None:
    result = demo_run
    found = {(e["kind"], e["scope"]): e for e in result["scheduled"]}
    assert found[("outage", "198.18.16.0/20")]["found_events"] == 16
    assert found[("peninsula", "198.18.64.0/21")]["found_events"] == 8
    assert found[("island", "vp6")]["found_events"] == 1
    assert result["unexpected"] == []
    assert result["ok"]
    assert all(count <= 20 for count in result["max_probes_in_window"].values())

    # Independently of match_schedule: kinds, VPs and times, straight from the event file.
    events = pq.read_table(result["events_file"]).to_pylist()
    t0 = result["started_at"]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_kind.setdefault(str(event["kind"]), []).append(event)
    assert {k: len(v) for k, v in by_kind.items()} == {"outage": 16, "peninsula": 8, "island": 1}
    for kind, (start, end, down) in {
        "outage": (20, 40, ALL_VPS),
        "peninsula": (32, 60, ["vp2", "vp3"]),
    }.items():
        for event in by_kind[kind]:
            assert abs(event["start"] - (t0 + start)) <= ROUND_S
            assert abs(event["end"] - (t0 + end)) <= ROUND_S
            assert sorted(event["vps_down"]) == down
    (island,) = by_kind["island"]
    assert island["scope"] == "vp6"
    assert abs(island["start"] - (t0 + 52)) <= ROUND_S and abs(island["end"] - (t0 + 76)) <= ROUND_S
    # Quiet periods: nothing before the first event starts or after the last one ends.
    assert min(e["start"] for e in events) >= t0 + 20 - ROUND_S
    assert max(e["end"] for e in events) <= t0 + 76 + ROUND_S
    report = Path(result["report"]).read_text()
    assert "Islands (1)" in report and "Outages (16)" in report


@pytest.mark.root
@pytest.mark.slow
def test_reach_detect_reads_the_monitor_fsdb(demo_run: dict[str, Any]) -> None:
    """``liveness reach detect`` on the monitor's FSDB files finds the same events: the 16
    outages, the 8 peninsulas and the island, and (with islands masked, its default) no
    peninsula for the blocks that only the island VP lost."""
    out = Path(demo_run["output_dir"])
    fsdb = sorted(str(path) for path in out.glob("vp*.fsdb"))
    assert len(fsdb) == 6
    done = subprocess.run(
        [sys.executable, "-m", "liveness.cli.main", "reach", "detect", *fsdb,
         "--round", "4", "--min-duration", "4", "--vp-blocks", "vp6=198.18.255.0/24", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)["events_list"]
    t0 = demo_run["started_at"]
    outages = [e for e in events if e["kind"] == "outage"]
    assert len(outages) == 16 and all(sorted(e["vps_down"]) == ALL_VPS for e in outages)
    assert [e["scope"] for e in events if e["kind"] == "island"] == ["vp6"]
    peninsulas = [e for e in events if e["kind"] == "peninsula"]
    assert sorted(e["scope"] for e in peninsulas) == [f"198.18.{64 + k}.0/24" for k in range(8)]
    for event in peninsulas:
        assert sorted(event["vps_down"]) == ["vp2", "vp3"]
        assert abs(event["start"] - (t0 + 32)) <= ROUND_S
        assert abs(event["end"] - (t0 + 60)) <= ROUND_S


def _obs(rows: list[tuple[str, str, int, int, str]]) -> pa.Table:
    vp, target, t0, t1, status = zip(*rows, strict=True)
    return pa.Table.from_arrays(
        [
            pa.array(vp).dictionary_encode(),
            pa.array(target).dictionary_encode(),
            pa.array([4] * len(rows), pa.uint8()),
            pa.array(t0, pa.int64()),
            pa.array(t1, pa.int64()),
            pa.array(status).dictionary_encode(),
        ],
        schema=OBSERVATION_SCHEMA,
    )


def test_match_schedule_needs_kind_vps_and_times() -> None:
    obs = _obs(
        [
            ("a", "198.18.0.0/24", 1000, 1040, "up"),
            ("b", "198.18.0.0/24", 1000, 1040, "up"),
            ("a", "198.18.1.0/24", 1000, 1040, "up"),
            ("b", "198.18.1.0/24", 1000, 1012, "up"),
            ("b", "198.18.1.0/24", 1012, 1024, "down"),  # b alone: a peninsula of 12 s
            ("b", "198.18.1.0/24", 1024, 1040, "up"),
        ]
    )
    events = detect(obs, DetectParams(round_s=4, min_duration=4)).events
    schedule = pa.Table.from_pylist(
        [{"kind": "peninsula", "scope": "198.18.1.0/24", "vps_down": "b", "start": 12.0,
          "end": 24.0}],
        schema=SCHEDULE_SCHEMA,
    )  # fmt: skip
    good = match_schedule(events, schedule, 1000.0, tolerance_s=4.0)
    assert good["ok"] and good["scheduled"][0]["found_events"] == 1
    late = match_schedule(events, schedule, 990.0, tolerance_s=4.0)  # 10 s off: not on time
    assert not late["ok"] and len(late["unexpected"]) == 1
    wrong_vps = schedule.set_column(2, "vps_down", pa.array(["a"]))
    assert not match_schedule(events, wrong_vps, 1000.0, tolerance_s=4.0)["ok"]
