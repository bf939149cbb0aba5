"""Connectivity in two families, on hand-made data with every answer worked out by hand below.

The world of the detector tests: VPs a, b and x each measure ten IPv4 /24s (10.0.0-9.0/24) and
ten IPv6 /48s (2001:db8:0-9::/48) from 0 to 3960 s (six 660-s rounds). Everyone sees every
block up, except that from 1320 to 2640 (rounds 2 and 3) x reaches only two IPv6 blocks
(2001:db8::/48, its own, and 2001:db8:1::/48) and sees the other eight down. So:

- IPv6: x is an island [1320, 2640) (2 of 10 active blocks reached, below one half; it still
  reaches its own block); without the island mask each of the eight blocks x lost is also a
  peninsula (a and b up, x down) over the same time; with the mask (the default) they are not.
- IPv4: nothing at all. x reached all ten IPv4 blocks throughout: the IPv4 view of x shows no
  event, and across families x was an IPv6 island while a member of the IPv4 core.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from observation_rows import Row, observation_table

from cli_runner import run_cli
from liveness.output import REPLY_SCHEMA, open_writer
from liveness.reach.blocks import block_keys6, block_names6
from liveness.reach.detect import DetectParams, detect
from liveness.reach.families import cross_family
from liveness.reach.island_mask import detect_with_island_mask
from liveness.reach.report import render_report
from liveness.reach.rir import read_census
from liveness.reach.scans import observations_from_scans

NS = 1_000_000_000
V4 = [f"10.0.{i}.0/24" for i in range(10)]
V6 = [f"2001:db8:{i:x}::/48" if i else "2001:db8::/48" for i in range(10)]
END, CUT = 3960, (1320, 2640)


def world(x_ipv4_island: bool = False) -> list[Row]:
    rows: list[Row] = []
    for vp in ("a", "b", "x"):
        for af, blocks in ((4, V4), (6, V6)):
            for i, block in enumerate(blocks):
                lost = vp == "x" and i >= 2 and (af == 6 or x_ipv4_island)
                if lost:
                    rows += [
                        (vp, block, af, 0, CUT[0], "up"),
                        (vp, block, af, CUT[0], CUT[1], "down"),
                        (vp, block, af, CUT[1], END, "up"),
                    ]
                else:
                    rows.append((vp, block, af, 0, END, "up"))
    return rows


PARAMS = DetectParams(round_s=660, min_duration=660)


def events_of(found: Any) -> list[tuple[str, str, int, int, int, list[str]]]:
    return sorted(
        (e["kind"], e["scope"], e["af"], e["start"], e["end"], e["vps_down"])
        for e in found.events.to_pylist()
    )


def test_ipv6_island_and_no_ipv4_event() -> None:
    found = detect_with_island_mask(observation_table(world()), PARAMS)
    assert events_of(found) == [("island", "x", 6, 1320, 2640, [])]
    assert [e for e in found.events.to_pylist() if e["af"] == 4] == []  # IPv4 view: no event
    (island,) = found.events.to_pylist()
    assert island["share"] == pytest.approx(0.2)  # 2 of 10 active IPv6 blocks
    summary = {(r["vp"], r["af"]): r for r in found.vp_summary.to_pylist()}
    assert summary["x", 6]["island_s"] == 1320 and summary["x", 4]["island_s"] == 0
    assert summary["x", 4]["measured_s"] == summary["x", 6]["measured_s"] == END
    assert all(r["island_s"] == 0 for k, r in summary.items() if k != ("x", 6))


def test_without_the_mask_the_lost_ipv6_blocks_are_peninsulas() -> None:
    found = detect(observation_table(world()), PARAMS)
    expected = [("peninsula", block, 6, 1320, 2640, ["x"]) for block in V6[2:]]
    assert events_of(found) == sorted([*expected, ("island", "x", 6, 1320, 2640, [])])


def test_own_blocks_per_family() -> None:
    obs = observation_table(world())
    # An IPv4 block of its own does not stop x being an IPv6 island (it reaches no IPv6 block
    # by that name); its own IPv6 block, reached, keeps it an island.
    for blocks in ({"x": "10.0.0.0/24"}, {"x": ("10.0.0.0/24", "2001:db8::/48")}):
        assert events_of(detect_with_island_mask(obs, PARAMS, blocks)) == [
            ("island", "x", 6, 1320, 2640, [])
        ]
    # If its own IPv6 block is one it lost, x is down in IPv6 rather than an island: the eight
    # blocks are peninsulas with x down, and nothing in IPv4.
    found = detect_with_island_mask(obs, PARAMS, {"x": ("10.0.0.0/24", "2001:db8:5::/48")})
    assert events_of(found) == [("peninsula", block, 6, 1320, 2640, ["x"]) for block in V6[2:]]


def test_cross_family_says_island_of_one_core_of_the_other() -> None:
    obs = observation_table(world())
    found = detect_with_island_mask(obs, PARAMS)
    assert cross_family(obs, found).to_pylist() == [
        {"vp": "x", "af": 6, "start": 1320, "end": 2640, "other_af": 4, "other": "core",
         "reached": 10, "measured": 10},
    ]  # fmt: skip
    both = observation_table(world(x_ipv4_island=True))
    found = detect_with_island_mask(both, PARAMS)
    assert events_of(found) == [
        ("island", "x", 4, 1320, 2640, []),
        ("island", "x", 6, 1320, 2640, []),
    ]
    rows = cross_family(both, found).to_pylist()
    assert [(r["af"], r["other"], r["reached"], r["measured"]) for r in rows] == [
        (4, "island", 2, 10),  # during [1320, 2640) x saw 2 blocks up and 8 down, each family
        (6, "island", 2, 10),
    ]
    v6_only = observation_table([r for r in world() if r[2] == 6])  # x measured no IPv4 at all
    found = detect_with_island_mask(v6_only, PARAMS)
    assert [r["other"] for r in cross_family(v6_only, found).to_pylist()] == ["unmeasured"]


def test_report_states_the_ipv6_island_in_the_ipv4_core() -> None:
    obs = observation_table(world())
    page = render_report(obs, detect_with_island_mask(obs, PARAMS), timelines=0)
    assert (
        "<b>x</b> was an IPv6 island from 1970-01-01 00:22 for 1320 s while a member of the "
        "IPv4 core (it reached 10 of the 10 IPv4 targets it measured)." in page
    )
    v4, v6 = page.split("<h2>IPv4</h2>")[1].split("<h2>IPv6</h2>")
    assert "Islands (0)" in v4 and "Outages (0)" in v4 and "Peninsulas (0)" in v4
    assert "Islands (1)" in v6 and "Peninsulas (0)" in v6
    # 30 IPv4 rows (one per VP and block); IPv6: 10 each for a and b, 2 + 8 x 3 for x.
    assert (
        "76 observation intervals, 1970-01-01 00:00 to 1970-01-01 01:06 UTC "
        "(IPv4: 30 intervals from 3 VPs; IPv6: 46 intervals from 3 VPs)"
    ) in page


# --- scan files of both families -------------------------------------------------------------


def _addr(text: str) -> tuple[int, bytes | None]:
    address = ipaddress.ip_address(text)
    return (int(address), None) if address.version == 4 else (0, address.packed)


def write_scan(path: Path, vp: str, replies: list[tuple[float, str, str]]) -> Path:
    """Replies (seconds, target, responder) of either family, through the Parquet writer (so
    IPv6 rows hold null ``target``/``responder``, as real scan files do)."""
    columns: dict[str, list[Any]] = {name: [] for name in REPLY_SCHEMA.names}
    for seconds, target, responder in replies:
        t4, t6 = _addr(target)
        r4, r6 = _addr(responder)
        row = {
            "ts": int(seconds * NS), "probe": "icmp_echo", "target": t4, "responder": r4,
            "reply": "echo_reply" if target == responder else "icmp_unreach",
            "icmp_type": 0, "icmp_code": 0, "tcp_flags": 0, "ttl": 64, "ipid": 0, "sport": 0,
            "dport": 0, "attempt": 0, "repeat": False, "app_valid": False, "vp": vp,
            "af": 4 if t6 is None else 6, "target6": t6, "responder6": r6,
            "app_active": False, "app_proto": "", "banner": None,
        }  # fmt: skip
        for name, value in row.items():
            columns[name].append(value)
    plain = pa.schema(
        [
            pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f
            for f in REPLY_SCHEMA
        ]
    )
    replies_table = pa.Table.from_pydict(columns, schema=plain).cast(REPLY_SCHEMA)
    with open_writer(str(path)) as writer:
        writer.write(replies_table)
    return path


def rows_of(obs: pa.Table) -> list[tuple[str, str, int, int, int, str]]:
    return sorted(
        (r["vp"], r["target"], r["af"], r["t0"], r["t1"], r["status"]) for r in obs.to_pylist()
    )


@pytest.fixture
def dual(tmp_path: Path) -> list[Path]:
    """VP a scans both families; VP b too, but its IPv6 replies are all from a router; VP c
    scanned IPv4 only (its file has no IPv6 row at all)."""
    a = write_scan(
        tmp_path / "a.parquet",
        "a",
        [
            (10.0, "198.18.1.5", "198.18.1.5"),
            (11.0, "2001:db8:1:2::5", "2001:db8:1:2::5"),
            (12.0, "2001:db8:1:3::7", "2001:db8:1:3::7"),  # same /48, another /64
            (13.0, "2001:db8:2::1", "2001:db8:2::1"),
        ],
    )
    b = write_scan(
        tmp_path / "b.parquet",
        "b",
        [
            (20.0, "198.18.1.9", "198.18.1.9"),
            (21.0, "2001:db8:1:2::5", "2001:db8:ffff::1"),  # a router's ICMPv6 error
        ],
    )
    c = write_scan(tmp_path / "c.parquet", "c", [(30.0, "198.18.2.1", "198.18.2.1")])
    return [a, b, c]


def test_scans_make_ipv6_block_observations(dual: list[Path]) -> None:
    assert rows_of(observations_from_scans(dual)) == [
        ("a", "198.18.1.0/24", 4, 0, 660, "up"),
        ("a", "2001:db8:1::/48", 6, 0, 660, "up"),  # two addresses of one /48: one block
        ("a", "2001:db8:2::/48", 6, 0, 660, "up"),
        ("b", "198.18.1.0/24", 4, 0, 660, "up"),  # b's router error: no IPv6 block is up
        ("c", "198.18.2.0/24", 4, 0, 660, "up"),
    ]
    seen = observations_from_scans(dual, probed_blocks="seen")
    assert rows_of(seen) == [
        ("a", "198.18.1.0/24", 4, 0, 660, "up"),
        ("a", "198.18.2.0/24", 4, 0, 660, "down"),  # c's block, probed by all
        ("a", "2001:db8:1::/48", 6, 0, 660, "up"),
        ("a", "2001:db8:2::/48", 6, 0, 660, "up"),
        ("b", "198.18.1.0/24", 4, 0, 660, "up"),
        ("b", "198.18.2.0/24", 4, 0, 660, "down"),
        ("b", "2001:db8:1::/48", 6, 0, 660, "down"),  # probed (b's own error names it)
        ("b", "2001:db8:2::/48", 6, 0, 660, "down"),
        ("c", "198.18.1.0/24", 4, 0, 660, "down"),
        ("c", "198.18.2.0/24", 4, 0, 660, "up"),  # c made no IPv6 observation at all
    ]


def test_scan_prefix6_and_explicit_probed6(dual: list[Path]) -> None:
    by64 = observations_from_scans(dual[:1], block_prefix6=64)
    assert [r[1] for r in rows_of(by64) if r[2] == 6] == [
        "2001:db8:1:2::/64",
        "2001:db8:1:3::/64",
        "2001:db8:2::/64",
    ]
    probed6 = [
        ipaddress.IPv6Address("2001:db8:2::99").packed,
        ipaddress.IPv6Address("2001:db8:9::").packed,
    ]
    table6 = observations_from_scans(dual[:2], probed_blocks6=probed6)
    assert [r for r in rows_of(table6) if r[2] == 6] == [
        ("a", "2001:db8:1::/48", 6, 0, 660, "up"),  # answered though not in the list
        ("a", "2001:db8:2::/48", 6, 0, 660, "up"),
        ("a", "2001:db8:9::/48", 6, 0, 660, "down"),
        ("b", "2001:db8:2::/48", 6, 0, 660, "down"),
        ("b", "2001:db8:9::/48", 6, 0, 660, "down"),
    ]
    assert [r for r in rows_of(table6) if r[2] == 4] == [  # no IPv4 list: up only
        ("a", "198.18.1.0/24", 4, 0, 660, "up"),
        ("b", "198.18.1.0/24", 4, 0, 660, "up"),
    ]
    with pytest.raises(Exception, match="block_prefix6: 65 is not between 8 and 64"):
        observations_from_scans(dual, block_prefix6=65)


def test_block_names6_are_rfc5952() -> None:
    texts = ["2001:DB8:0:0:1::5", "2001:db8:abcd:12::", "::1", "fe80::1:2:3:4"]
    packed = [ipaddress.IPv6Address(t).packed for t in texts]
    for prefix in (16, 32, 48, 56, 64):
        keys = block_keys6(pa.array(packed, pa.binary(16)), prefix)
        expected = [str(ipaddress.ip_network(f"{t}/{prefix}", strict=False)) for t in texts]
        assert block_names6(keys, prefix).to_pylist() == expected


def test_census_counts_only_ipv4_responders(dual: list[Path], tmp_path: Path) -> None:
    census = read_census(dual[0])  # one IPv4 responder and three IPv6 ones
    assert census.address.tolist() == [int(ipaddress.IPv4Address("198.18.1.5"))]
    bad = tmp_path / "census.csv"
    bad.write_text("block,active\n198.18.0.0/24,3\n2001:db8::/48,4\n")
    with pytest.raises(Exception, match=r"census.csv:3: '2001:db8::/48' is IPv6"):
        read_census(bad)


def test_detect_cli_on_dual_stack_scans(
    dual: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        ["reach", "detect", *map(str, dual), "--round", "0", "--min-duration", "0",
         "--min-blocks", "1", "--no-island-mask", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    # By hand (the "seen" table above): IPv4 198.18.1.0/24 is up for a and b, down for c ->
    # a peninsula; 198.18.2.0/24 likewise (up for c only). IPv6 2001:db8:1::/48 and :2::/48
    # are up for a, down for b -> two peninsulas. No outage, and no island: b and c each
    # still reach one of two IPv4 blocks (not below one half); in IPv6 b reaches nothing
    # (down, not an island).
    assert result["by_af"]["4"] == {
        "events": 2,
        "by_kind": {"peninsula": {"events": 2, "seconds": 660 * 2}},
    }
    assert result["by_af"]["6"]["by_kind"] == {"peninsula": {"events": 2, "seconds": 660 * 2}}
    assert result["by_kind"]["peninsula"]["events"] == 4 and result["cross_family"] == []
    assert sorted(e["scope"] for e in result["events_list"] if e["af"] == 6) == [
        "2001:db8:1::/48",
        "2001:db8:2::/48",
    ]
    code, out, _ = run_cli(
        ["reach", "detect", *map(str, dual), "--prefix6", "64", "--json"], capsys
    )
    assert code == 0
    scopes = {e["scope"] for e in json.loads(out)["events_list"] if e["af"] == 6}
    assert scopes <= {"2001:db8:1:2::/64", "2001:db8:1:3::/64", "2001:db8:2::/64"}
    code, _, err = run_cli(["reach", "detect", str(dual[0]), "--prefix6", "96"], capsys)
    assert code == 2 and "--prefix6" in err and "Traceback" not in err
    code, _, err = run_cli(
        [
            "reach",
            "detect",
            str(dual[0]),
            "--vp-blocks",
            "a=10.0.0.0/24",
            "--vp-blocks",
            "a=10.1.0.0/24",
        ],
        capsys,
    )
    assert code == 2 and "VP 'a' has two IPv4 blocks" in err and "Traceback" not in err
