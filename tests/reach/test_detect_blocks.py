"""Block detector: outages and peninsulas on hand-built observations with known answers."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from liveness.errors import InputError
from liveness.reach.detect import EVENT_SCHEMA, DetectParams, detect
from liveness.reach.observation import OBSERVATION_SCHEMA

Row = tuple[str, str, int, int, str]

SECONDS = DetectParams(round_s=0, min_duration=0, gap=0, min_blocks=1)


def observations(rows: list[Row], af: int = 4) -> pa.Table:
    """An Observation table from (vp, target, t0, t1, status) rows."""
    vp, target, t0, t1, status = (list(c) for c in zip(*rows, strict=True))
    return pa.table(
        {
            "vp": pa.array(vp).dictionary_encode(),
            "target": pa.array(target).dictionary_encode(),
            "af": pa.array([af] * len(rows), pa.uint8()),
            "t0": pa.array(t0, pa.int64()),
            "t1": pa.array(t1, pa.int64()),
            "status": pa.array(status).dictionary_encode(),
        },
        schema=OBSERVATION_SCHEMA,
    )


def block_events(rows: list[Row], params: DetectParams = SECONDS) -> list[dict[str, Any]]:
    events = detect(observations(rows), params).events
    assert events.schema.equals(EVENT_SCHEMA, check_metadata=True)
    return [e for e in events.to_pylist() if e["kind"] != "island"]


def test_all_vps_down_is_an_outage() -> None:
    rows: list[Row] = [
        ("a", "b1", 0, 100, "up"),
        ("a", "b1", 100, 300, "down"),
        ("a", "b1", 300, 400, "up"),
        ("b", "b1", 0, 100, "up"),
        ("b", "b1", 100, 300, "down"),
        ("b", "b1", 300, 400, "up"),
    ]
    (event,) = block_events(rows)
    assert event["kind"] == "outage"
    assert (event["scope"], event["start"], event["end"], event["duration"]) == (
        "b1",
        100,
        300,
        200,
    )
    assert event["vps_up"] == [] and sorted(event["vps_down"]) == ["a", "b"]
    assert event["share"] == 0.0


def test_partial_down_is_a_peninsula_then_outage() -> None:
    rows: list[Row] = [
        ("a", "b1", 0, 100, "up"),
        ("a", "b1", 100, 400, "down"),
        ("b", "b1", 0, 200, "up"),
        ("b", "b1", 200, 400, "down"),
        ("c", "b1", 0, 400, "up"),
    ]
    events = block_events(rows)
    assert [(e["kind"], e["start"], e["end"]) for e in events] == [("peninsula", 100, 400)]
    assert events[0]["vps_up"] == ["b", "c"] and events[0]["vps_down"] == ["a", "b"]
    assert events[0]["share"] == pytest.approx(1 / 3)


def test_unknown_does_not_vote() -> None:
    rows: list[Row] = [
        ("a", "b1", 0, 100, "up"),
        ("a", "b1", 100, 200, "down"),
        ("a", "b1", 200, 300, "unknown"),
        ("b", "b1", 0, 100, "up"),
        ("b", "b1", 100, 300, "unknown"),
    ]
    # 100-200: only a votes and sees it down -> outage; 200-300: nobody votes -> nothing.
    events = block_events(rows)
    assert [(e["kind"], e["start"], e["end"], e["vps_down"]) for e in events] == [
        ("outage", 100, 200, ["a"])
    ]


def test_flapping_vp_makes_peninsulas_that_gap_merges() -> None:
    rows: list[Row] = [("b", "b1", 0, 1000, "up")]
    for start in range(0, 1000, 100):
        rows.append(("a", "b1", start, start + 50, "up"))
        rows.append(("a", "b1", start + 50, start + 100, "down"))
    separate = block_events(rows)
    assert len(separate) == 10
    assert all(e["kind"] == "peninsula" and e["duration"] == 50 for e in separate)
    merged = block_events(rows, DetectParams(round_s=0, min_duration=0, gap=50, min_blocks=1))
    assert [(e["start"], e["end"]) for e in merged] == [(50, 1000)]
    too_short = block_events(rows, DetectParams(round_s=0, min_duration=51, gap=0, min_blocks=1))
    assert too_short == []
    gap_too_small = block_events(
        rows, DetectParams(round_s=0, min_duration=0, gap=49, min_blocks=1)
    )
    assert len(gap_too_small) == 10


def test_min_duration_keeps_long_events_only() -> None:
    rows: list[Row] = [
        ("a", "b1", 0, 100, "down"),
        ("a", "b1", 100, 200, "up"),
        ("a", "b1", 200, 500, "down"),
    ]
    params = DetectParams(round_s=0, min_duration=150, gap=0, min_blocks=1)
    assert [(e["start"], e["end"]) for e in block_events(rows, params)] == [(200, 500)]


def test_round_snapping_aligns_vps_whose_rounds_differ() -> None:
    # Both VPs see the same outage; their rounds start 40 s apart.
    rows: list[Row] = [
        ("a", "b1", 0, 660, "up"),
        ("a", "b1", 660, 1980, "down"),
        ("a", "b1", 1980, 2640, "up"),
        ("b", "b1", 40, 700, "up"),
        ("b", "b1", 700, 2020, "down"),
        ("b", "b1", 2020, 2680, "up"),
    ]
    in_seconds = block_events(rows)
    assert {e["kind"] for e in in_seconds} == {"peninsula", "outage"}
    snapped = block_events(rows, DetectParams(round_s=660, min_duration=0, min_blocks=1))
    assert [(e["kind"], e["start"], e["end"]) for e in snapped] == [("outage", 660, 1980)]


def test_overlapping_intervals_of_one_vp_are_rejected() -> None:
    rows: list[Row] = [("a", "b1", 0, 100, "up"), ("a", "b1", 50, 150, "up")]
    with pytest.raises(InputError, match="overlapping"):
        detect(observations(rows), SECONDS)
    rows = [("a", "b1", 0, 100, "up"), ("a", "b1", 50, 150, "down")]
    with pytest.raises(InputError, match="up and down"):
        detect(observations(rows), SECONDS)


def test_bad_status_and_inverted_interval_are_rejected() -> None:
    with pytest.raises(InputError, match="status 'maybe'"):
        detect(observations([("a", "b1", 0, 10, "maybe")]), SECONDS)
    with pytest.raises(InputError, match="t1 5 < t0 10"):
        detect(observations([("a", "b1", 10, 5, "up")]), SECONDS)


def test_more_than_64_vps() -> None:
    rows: list[Row] = [(f"v{i:02d}", "b1", 0, 100, "up") for i in range(69)]
    rows.append(("v69", "b1", 0, 100, "down"))
    (event,) = block_events(rows)
    assert event["kind"] == "peninsula" and event["vps_down"] == ["v69"]
    assert len(event["vps_up"]) == 69
    assert event["share"] == pytest.approx(69 / 70)


def _naive_states(rows: list[Row], horizon: int) -> dict[tuple[str, int], str]:
    """Per (block, second): outage / peninsula / up, by brute force."""
    states: dict[tuple[str, int], str] = {}
    for block in sorted({r[1] for r in rows}):
        for t in range(horizon):
            seen = [r[4] for r in rows if r[1] == block and r[2] <= t < r[3] and r[4] != "unknown"]
            if seen:
                ups = seen.count("up")
                states[block, t] = (
                    "up" if ups == len(seen) else "outage" if ups == 0 else "peninsula"
                )
    return states


@pytest.mark.parametrize("seed", range(8))
def test_matches_brute_force_on_random_observations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    horizon = 200
    for vp in ("a", "b", "c"):
        for block in ("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"):
            cuts = np.sort(
                rng.choice(np.arange(1, horizon), size=rng.integers(1, 8), replace=False)
            )
            edges = [0, *cuts.tolist(), horizon]
            for t0, t1 in itertools.pairwise(edges):
                status = str(rng.choice(["up", "down", "unknown", "gap"], p=[0.4, 0.3, 0.2, 0.1]))
                if status != "gap":
                    rows.append((vp, block, t0, t1, status))
    expected = _naive_states(rows, horizon)
    found: dict[tuple[str, int], str] = {}
    params = DetectParams(round_s=0, min_duration=0, gap=0, min_blocks=1, chunk_rows=7)
    for event in block_events(rows, params):
        for t in range(event["start"], event["end"]):
            assert (event["scope"], t) not in found
            found[event["scope"], t] = event["kind"]
    assert found == {key: kind for key, kind in expected.items() if kind != "up"}


def test_address_families_are_detected_separately() -> None:
    v4 = observations([("a", "10.0.0.0/24", 0, 100, "down"), ("b", "10.0.0.0/24", 0, 100, "up")])
    v6 = observations([("a", "2001:db8::/48", 500, 600, "down")], af=6)
    events = detect(pa.concat_tables([v4, v6]).unify_dictionaries(), SECONDS).events.to_pylist()
    assert sorted((e["kind"], e["af"], e["start"]) for e in events) == [
        ("outage", 6, 500),
        ("peninsula", 4, 0),
    ]


def test_empty_observations() -> None:
    empty = OBSERVATION_SCHEMA.empty_table()
    found = detect(empty, SECONDS)
    assert found.events.num_rows == 0 and found.intervals == 0
