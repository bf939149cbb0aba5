"""Islands first, then blocks: an island VP's view is masked before the block detector runs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from liveness.cli.main import main
from liveness.reach.detect import EVENT_SCHEMA, DetectParams, detect
from liveness.reach.island_mask import detect_with_island_mask, mask_islands
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.trinocular import write_trinocular

Row = tuple[str, str, int, int, str]
BLOCKS = [f"198.18.{i}.0/24" for i in range(12)]
OWN = {"x": "198.18.11.0/24"}  # x's own LAN: the last block


def observations(rows: list[Row], *, dictionary: bool = True) -> pa.Table:
    vp, target, t0, t1, status = (list(c) for c in zip(*rows, strict=True))

    def column(values: list[str]) -> pa.Array:  # type: ignore[type-arg]
        plain = pa.array(values, pa.string())
        return plain.dictionary_encode() if dictionary else plain

    table = pa.table(
        {
            "vp": column(vp),
            "target": column(target),
            "af": pa.array([4] * len(rows), pa.uint8()),
            "t0": pa.array(t0, pa.int64()),
            "t1": pa.array(t1, pa.int64()),
            "status": column(status),
        }
    )
    return table.cast(OBSERVATION_SCHEMA) if dictionary else table


def island_world() -> list[Row]:
    """a and b see every block up; x is cut off in [200, 400): it sees only its own LAN up,
    and a and b see x's LAN down then. Block 3 is a real peninsula for b in [450, 550)."""
    rows: list[Row] = []
    for block in BLOCKS:
        for vp in ("a", "b"):
            if block == OWN["x"]:
                rows += [(vp, block, 0, 200, "up"), (vp, block, 200, 400, "down")]
                rows.append((vp, block, 400, 600, "up"))
            elif vp == "b" and block == BLOCKS[3]:
                rows += [(vp, block, 0, 450, "up"), (vp, block, 450, 550, "down")]
                rows.append((vp, block, 550, 600, "up"))
            else:
                rows.append((vp, block, 0, 600, "up"))
        if block == OWN["x"]:
            rows.append(("x", block, 0, 600, "up"))
        else:
            rows += [("x", block, 0, 200, "up"), ("x", block, 200, 400, "down")]
            rows.append(("x", block, 400, 600, "up"))
    return rows


PARAMS = DetectParams(round_s=0, min_duration=0, min_blocks=5)


def summary(events: pa.Table) -> list[tuple[str, str, int, int]]:
    return sorted(
        (str(e["kind"]), str(e["scope"]), e["start"], e["end"]) for e in events.to_pylist()
    )


def test_one_pass_reports_the_island_also_as_peninsulas() -> None:
    found = summary(detect(observations(island_world()), PARAMS, OWN).events)
    assert ("island", "x", 200, 400) in found
    assert sum(kind == "peninsula" for kind, *_ in found) == 13  # x's 11 lost, x's LAN, b's one


@pytest.mark.parametrize("dictionary", [True, False])
def test_masking_leaves_the_island_and_the_real_peninsula(dictionary: bool) -> None:
    found = detect_with_island_mask(
        observations(island_world(), dictionary=dictionary), PARAMS, OWN
    )
    assert summary(found.events) == [
        ("island", "x", 200, 400),
        ("peninsula", BLOCKS[3], 450, 550),
    ]
    (peninsula,) = [e for e in found.events.to_pylist() if e["kind"] == "peninsula"]
    assert peninsula["vps_down"] == ["b"] and sorted(peninsula["vps_up"]) == ["a", "x"]


def test_no_island_means_one_pass_and_the_same_answer() -> None:
    rows = [row for row in island_world() if row[0] != "x"]
    rows += [("x", block, 0, 600, "up") for block in BLOCKS]
    plain = detect(observations(rows), PARAMS, OWN)
    masked = detect_with_island_mask(observations(rows), PARAMS, OWN)
    assert masked.events.equals(plain.events)


def test_mask_splits_rows_at_the_island_and_adds_unknown() -> None:
    obs = observations(
        [
            ("a", "198.18.0.0/24", 0, 100, "up"),
            ("i", "198.18.0.0/24", 0, 100, "down"),
            ("a", "198.18.9.0/24", 0, 100, "down"),  # i's own block, seen from a
            ("a", "198.18.1.0/24", 0, 100, "up"),
            ("i", "198.18.1.0/24", 50, 55, "down"),  # wholly inside the island
        ]
    )
    islands = pa.Table.from_pylist(
        [{"kind": "island", "scope": "i", "af": 4, "start": 40, "end": 60, "duration": 20,
          "vps_up": ["i"], "vps_down": [], "share": 0.0}],
        schema=EVENT_SCHEMA,
    )  # fmt: skip
    masked = mask_islands(obs, islands, {"i": "198.18.9.0/24"})
    assert masked.schema == OBSERVATION_SCHEMA
    got = sorted((r["vp"], r["target"], r["t0"], r["t1"], r["status"]) for r in masked.to_pylist())
    assert got == [
        ("a", "198.18.0.0/24", 0, 100, "up"),
        ("a", "198.18.1.0/24", 0, 100, "up"),
        ("a", "198.18.9.0/24", 0, 40, "down"),
        ("a", "198.18.9.0/24", 40, 60, "unknown"),
        ("a", "198.18.9.0/24", 60, 100, "down"),
        ("i", "198.18.0.0/24", 0, 40, "down"),
        ("i", "198.18.0.0/24", 40, 60, "unknown"),
        ("i", "198.18.0.0/24", 60, 100, "down"),
        ("i", "198.18.1.0/24", 50, 55, "unknown"),
    ]
    other_af = islands.set_column(2, "af", pa.array([6], pa.uint8()))
    unmasked = mask_islands(obs, other_af, {"i": "198.18.9.0/24"})  # an IPv6 island
    assert unmasked.to_pylist() == obs.to_pylist()


def test_reach_detect_masks_by_default_and_can_be_told_not_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trinocular files: x is cut off in rounds 5-9 (sees only its LAN, the last block)."""
    round_s, t0 = 660, 1_699_999_860
    blocks = np.array([0xC6120000 + (i << 8) for i in range(12)], np.uint32)
    rounds = np.arange(15)
    block = np.repeat(blocks, rounds.size)
    round_no = np.tile(rounds, blocks.size)
    cut = (round_no >= 5) & (round_no < 10)
    for vp in ("a", "b", "x"):
        status = np.ones(block.size, np.int8)
        if vp == "x":
            status[cut & (block != blocks[-1])] = 0
        else:
            status[cut & (block == blocks[-1])] = 0
        write_trinocular(tmp_path / f"{vp}.fsdb", block, round_no, t0 + round_no * round_s, status)
    files = [str(tmp_path / f"{vp}.fsdb") for vp in ("a", "b", "x")]
    base = ["reach", "detect", *files, "--vp-blocks", "x=198.18.11.0/24", "--min-blocks", "5"]
    masked = _detect_json([*base, "--json"], capsys)
    assert masked["by_kind"] == {"island": {"events": 1, "seconds": 5 * round_s}}
    raw = _detect_json([*base, "--no-island-mask", "--json"], capsys)
    assert raw["by_kind"]["island"]["events"] == 1
    assert raw["by_kind"]["peninsula"]["events"] == 12  # x's 11 lost blocks and x's LAN


def _detect_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result: dict[str, Any] = json.loads(captured.out)
    return result


def test_two_islands_of_one_vp_mask_one_long_row_twice() -> None:
    obs = observations(
        [("i", "198.18.0.0/24", 0, 1000, "down"), ("a", "198.18.0.0/24", 0, 9, "up")]
    )
    islands = pa.Table.from_pylist(
        [{"kind": "island", "scope": "i", "af": 4, "start": start, "end": end,
          "duration": end - start, "vps_up": ["i"], "vps_down": [], "share": 0.0}
         for start, end in ((200, 400), (500, 700))],
        schema=EVENT_SCHEMA,
    )  # fmt: skip
    masked = mask_islands(obs, islands).to_pylist()
    got = sorted((r["t0"], r["t1"], r["status"]) for r in masked if r["vp"] == "i")
    assert got == [
        (0, 200, "down"),
        (200, 400, "unknown"),
        (400, 500, "down"),
        (500, 700, "unknown"),
        (700, 1000, "down"),
    ]


def test_own_block_is_matched_in_canonical_form() -> None:
    found = detect_with_island_mask(observations(island_world()), PARAMS, {"x": "198.18.11.7/24"})
    assert summary(found.events) == [
        ("island", "x", 200, 400),
        ("peninsula", BLOCKS[3], 450, 550),
    ]


@pytest.mark.parametrize("seed", range(40))
def test_mask_equals_a_second_by_second_reference(seed: int) -> None:
    """Random rows and islands (overlapping, several per VP, two families) against masking
    each second on its own."""
    rng = np.random.default_rng(seed)
    vps = ["a", "b", "c"]
    targets = {
        4: ["198.18.0.0/24", "198.18.1.0/24", "198.18.2.0/24"],
        6: ["2001:db8::/48", "2001:db8:1::/48", "2001:db8:2::/48"],
    }
    # a has a block of each family; b only an IPv4 one (its IPv6 islands mask only its view).
    own = {"a": ("198.18.2.0/24", "2001:db8:2::/48"), "b": ("198.18.0.0/24",)}
    rows: list[tuple[str, str, int, int, int, str]] = []
    for vp in vps:
        for af in (4, 6):
            for target in targets[af]:
                cuts = np.unique(np.concatenate([[0, 60], rng.integers(1, 60, 3)]))
                for start, end in itertools.pairwise(cuts.tolist()):
                    status = ("up", "down", "unknown")[int(rng.integers(0, 3))]
                    rows.append((vp, target, af, int(start), int(end), status))
    obs = pa.table(
        {
            "vp": pa.array([r[0] for r in rows]).dictionary_encode(),
            "target": pa.array([r[1] for r in rows]).dictionary_encode(),
            "af": pa.array([r[2] for r in rows], pa.uint8()),
            "t0": pa.array([r[3] for r in rows], pa.int64()),
            "t1": pa.array([r[4] for r in rows], pa.int64()),
            "status": pa.array([r[5] for r in rows]).dictionary_encode(),
        }
    ).cast(OBSERVATION_SCHEMA)
    island_rows = []
    for _ in range(int(rng.integers(1, 6))):
        start = int(rng.integers(0, 55))
        island_rows.append(
            {"kind": "island", "scope": str(rng.choice(["a", "b", "c", "zz"])),
             "af": int(rng.choice([4, 6])), "start": start,
             "end": start + int(rng.integers(1, 20)), "duration": 0, "vps_up": [],
             "vps_down": [], "share": 0.0}
        )  # fmt: skip
    islands = pa.Table.from_pylist(island_rows, schema=EVENT_SCHEMA)

    def masked_at(vp: str, target: str, af: int, second: int) -> bool:
        owners = {vp} | {name for name, blocks in own.items() if target in blocks}
        return any(
            i["scope"] in owners and i["af"] == af and i["start"] <= second < i["end"]
            for i in island_rows
        )

    expected = sorted(
        (vp, target, af, second, "unknown" if masked_at(vp, target, af, second) else status)
        for vp, target, af, start, end, status in rows
        for second in range(start, end)
    )
    result = mask_islands(obs, islands, own)
    got = sorted(
        (r["vp"], r["target"], r["af"], second, r["status"])
        for r in result.to_pylist()
        for second in range(r["t0"], r["t1"])
    )
    assert got == expected
    assert all(r["t0"] < r["t1"] for r in result.to_pylist())
