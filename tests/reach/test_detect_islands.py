"""VP detector: islands, ties at exactly one half, unmeasurable VPs, a VP's own block."""

from __future__ import annotations

import pyarrow as pa
import pytest

from liveness.errors import InputError
from liveness.reach.detect import DetectParams, detect, parse_vp_blocks
from liveness.reach.observation import OBSERVATION_SCHEMA

Row = tuple[str, str, int, int, str]
BLOCKS = [f"10.0.{i}.0/24" for i in range(10)]


def observations(rows: list[Row]) -> pa.Table:
    vp, target, t0, t1, status = (list(c) for c in zip(*rows, strict=True))
    return pa.table(
        {
            "vp": pa.array(vp).dictionary_encode(),
            "target": pa.array(target).dictionary_encode(),
            "af": pa.array([4] * len(rows), pa.uint8()),
            "t0": pa.array(t0, pa.int64()),
            "t1": pa.array(t1, pa.int64()),
            "status": pa.array(status).dictionary_encode(),
        },
        schema=OBSERVATION_SCHEMA,
    )


def world(reached_by_x: int, horizon: int = 600, cut: tuple[int, int] = (200, 400)) -> list[Row]:
    """VPs a and b see all 10 blocks up; x sees only ``reached_by_x`` of them during ``cut``."""
    rows: list[Row] = []
    for block in BLOCKS:
        rows.append(("a", block, 0, horizon, "up"))
        rows.append(("b", block, 0, horizon, "up"))
    for i, block in enumerate(BLOCKS):
        if i < reached_by_x:
            rows.append(("x", block, 0, horizon, "up"))
        else:
            rows += [
                ("x", block, 0, cut[0], "up"),
                ("x", block, cut[0], cut[1], "down"),
                ("x", block, cut[1], horizon, "up"),
            ]
    return rows


def params(**changes: int) -> DetectParams:
    values = {"round_s": 0, "min_duration": 0, "gap": 0, "min_blocks": 5, **changes}
    return DetectParams(**values)


def islands(
    rows: list[Row], p: DetectParams, vp_blocks: dict[str, str] | None = None
) -> list[dict[str, object]]:
    return [
        e
        for e in detect(observations(rows), p, vp_blocks).events.to_pylist()
        if e["kind"] == "island"
    ]


def test_vp_that_sees_only_itself_is_an_island() -> None:
    found = islands(world(1), params())
    assert [(e["scope"], e["start"], e["end"], e["vps_up"]) for e in found] == [
        ("x", 200, 400, ["x"])
    ]
    assert found[0]["share"] == pytest.approx(0.1)
    summary = {r["vp"]: r for r in detect(observations(world(1)), params()).vp_summary.to_pylist()}
    assert summary["x"]["island_s"] == 200 and summary["a"]["island_s"] == 0


def test_island_view_makes_peninsulas_of_the_blocks_it_lost() -> None:
    events = detect(observations(world(1)), params()).events.to_pylist()
    peninsulas = [e for e in events if e["kind"] == "peninsula"]
    assert sorted(e["scope"] for e in peninsulas) == BLOCKS[1:]
    assert all(e["vps_down"] == ["x"] for e in peninsulas)


def test_exactly_half_is_not_an_island() -> None:
    assert islands(world(5), params()) == []  # 5 of 10 reached: not below one half
    assert len(islands(world(4), params())) == 1  # 4 of 10: an island


def test_share_threshold_is_a_parameter() -> None:
    stricter = DetectParams(round_s=0, min_duration=0, min_blocks=5, island_share=0.7)
    assert len(islands(world(6), stricter)) == 1
    assert islands(world(7), stricter) == []


def test_vp_measuring_too_few_blocks_is_unmeasurable() -> None:
    rows = [r for r in world(1) if not (r[0] == "x" and r[1] not in BLOCKS[:3])]
    rows += [("x", block, 200, 400, "down") for block in BLOCKS[3:4]]
    # x measures 3 blocks outside the cut, 4 during it: below min_blocks=5 throughout.
    found = detect(observations(rows), params())
    assert [e for e in found.events.to_pylist() if e["kind"] == "island"] == []
    summary = {r["vp"]: r for r in found.vp_summary.to_pylist()}
    assert summary["x"]["unmeasurable_s"] == 600
    assert summary["a"]["unmeasurable_s"] == 0


def test_vp_that_reaches_nothing_is_down_not_an_island() -> None:
    assert islands(world(0), params()) == []


def test_own_block_must_still_be_reached() -> None:
    own_reached = {"x": BLOCKS[0]}
    assert len(islands(world(1), params(), own_reached)) == 1
    own_lost = {"x": BLOCKS[9]}  # x's own block is among those it lost: x is down, not an island
    assert islands(world(1), params(), own_lost) == []


def test_outage_blocks_do_not_count_as_active() -> None:
    rows = world(3)
    # Make blocks 3..9 down for every VP during the cut: they are outages, not active.
    rows = [r for r in rows if not (r[0] in ("a", "b") and r[1] in BLOCKS[3:])]
    for block in BLOCKS[3:]:
        for vp in ("a", "b"):
            rows += [
                (vp, block, 0, 200, "up"),
                (vp, block, 200, 400, "down"),
                (vp, block, 400, 600, "up"),
            ]
    assert islands(rows, params()) == []


def test_island_min_duration_and_gap() -> None:
    rows = world(1, horizon=1000, cut=(200, 300))
    rows = [r for r in rows if r[0] != "x"]
    for block in BLOCKS[1:]:
        rows += [
            ("x", block, 0, 200, "up"),
            ("x", block, 200, 300, "down"),
            ("x", block, 300, 350, "up"),
            ("x", block, 350, 450, "down"),
            ("x", block, 450, 1000, "up"),
        ]
    rows.append(("x", BLOCKS[0], 0, 1000, "up"))
    assert [(e["start"], e["end"]) for e in islands(rows, params())] == [(200, 300), (350, 450)]
    assert [(e["start"], e["end"]) for e in islands(rows, params(gap=50))] == [(200, 450)]
    assert islands(rows, params(min_duration=101)) == []


def test_vp_blocks_option_parsing() -> None:
    assert parse_vp_blocks(["x=10.0.0.0/24", "y=10.0.1.5/24", "x=2001:db8::/48"]) == {
        "x": ("10.0.0.0/24", "2001:db8::/48"),  # one block per family
        "y": ("10.0.1.5/24",),
    }
    with pytest.raises(InputError, match="VP 'x' has two IPv4 blocks"):
        parse_vp_blocks(["x=10.0.0.0/24", "x=10.0.1.0/24"])
    with pytest.raises(InputError, match="--vp-blocks"):
        parse_vp_blocks(["x"])
    with pytest.raises(InputError, match="not a CIDR"):
        parse_vp_blocks(["x=nowhere"])
    with pytest.raises(InputError, match="no observations by VP"):
        detect(observations(world(1)), params(), {"zz": "10.0.0.0/24"})
    # A block given in non-canonical form still matches.
    assert len(islands(world(1), params(), {"x": "10.0.0.7/24"})) == 1
