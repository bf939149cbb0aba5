"""RIR delegated statistics: totals on the real files against an independent count, malformed
lines, the active census, majorities (exactly 50% is none) and the smallest coalition."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from liveness.cli.main import cli, main
from liveness.errors import InputError
from liveness.reach.rir import (
    read_census,
    read_delegated,
    rir_table,
    secession,
    smallest_majority,
    table_totals,
)

# ../shared/data beside the repository (as on CI and the developers' machines).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

RIR_DIR = SHARED_DATA / "rir"
REAL = sorted(RIR_DIR.glob("delegated-*")) if RIR_DIR.exists() else []
needs_real = pytest.mark.skipif(not REAL, reason="real RIR files not present")


def _plain_count(
    paths: list[Path],
) -> tuple[int, Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Records, and IPv4 addresses / IPv6 /64s per (level, name): plain line parsing."""
    records = 0
    v4: Counter[tuple[str, str]] = Counter()
    v6: Counter[tuple[str, str]] = Counter()
    for path in paths:
        lines = [line for line in path.read_text().splitlines() if line and line[0] != "#"]
        for line in lines[1:]:  # the first line is the version line
            fields = line.split("|")
            if fields[5] == "summary":
                continue
            records += 1
            registry, cc, kind, _start, value, _date, status = fields[:7]
            if status not in ("allocated", "assigned"):
                continue
            for key in (("rir", registry), ("country", cc)):
                if kind == "ipv4":
                    v4[key] += int(value)
                elif kind == "ipv6":
                    v6[key] += 2 ** (64 - int(value))
    return records, v4, v6


@needs_real
def test_real_files_match_an_independent_count() -> None:
    records, v4, v6 = _plain_count(REAL)
    delegated = read_delegated(REAL)
    assert delegated.num_rows == records
    table = rir_table(delegated)
    totals = table_totals(table)
    assert totals["ipv4"] == sum(n for (level, _), n in v4.items() if level == "rir")
    assert totals["ipv6_64s"] == sum(n for (level, _), n in v6.items() if level == "rir")
    for row in table.to_pylist():
        key = (row["level"], row["name"])
        assert row["ipv4"] == v4[key], key
        assert row["ipv6_64s"] == v6[key], key
        assert row["ipv4_share"] == pytest.approx(v4[key] / totals["ipv4"])
        assert row["active"] is None
    assert {row["name"] for row in table.to_pylist() if row["level"] == "rir"} == {
        "afrinic",
        "lacnic",
    }
    shares = [row["ipv4_share"] for row in table.to_pylist() if row["level"] == "country"]
    assert sum(shares) == pytest.approx(1.0)


@needs_real
def test_real_summary_lines_agree_with_records() -> None:
    delegated = read_delegated(REAL[0])
    kinds = Counter(delegated["type"].cast(pa.string()).to_pylist())
    summary = {}
    for line in REAL[0].read_text().splitlines():
        fields = line.split("|")
        if len(fields) >= 6 and fields[5] == "summary":
            summary[fields[2]] = int(fields[4])
    assert dict(kinds) == summary


@needs_real
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("afrinic|ZA|ipv4|41.0.0|256|20100101|allocated|X", "not an IPv4 address"),
        ("afrinic|ZA|ipv4|41.0.0.0|many|20100101|allocated|X", "not an integer"),
        ("afrinic|ZA|ipv6|2001:db8::|70|20100101|allocated|X", "prefix length"),
        ("afrinic|ZA|ipv4|41.0.0.0", "at least 7"),
        ("afrinic|ZA|ipx|41.0.0.0|256|20100101|allocated|X", "unknown type"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    lines = REAL[0].read_text().splitlines()
    lines.insert(9, bad)  # becomes line 10
    path = tmp_path / "delegated-bad"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=message) as caught:
        read_delegated(path)
    assert f"{path}:10:" in str(caught.value)


@needs_real
def test_truncated_file_disagrees_with_its_summary(tmp_path: Path) -> None:
    path = tmp_path / "delegated-truncated"
    path.write_text("\n".join(REAL[0].read_text().splitlines()[:-100]) + "\n")
    with pytest.raises(InputError, match=r"summary says \d+ ipv6 records"):
        read_delegated(path)


HAND_BUILT = """\
2|test|20260101|6|19700101|20260101|+0000
test|*|ipv4|*|5|summary
test|*|ipv6|*|1|summary
test|XA|ipv4|10.0.0.0|1024|20200101|allocated|a
test|XB|ipv4|10.0.4.0|512|20200101|assigned|b
test|XC|ipv4|10.0.6.0|512|20200101|allocated|c
test|XD|ipv4|10.1.0.0|4096|20200101|reserved|d
test||ipv4|10.2.0.0|256||available|
test|XB|ipv6|2001:db8::|32|20200101|allocated|b
"""


@pytest.fixture
def hand_built(tmp_path: Path) -> Path:
    path = tmp_path / "delegated-test"
    path.write_text(HAND_BUILT)
    return path


def test_exactly_half_is_not_a_majority(hand_built: Path) -> None:
    table = rir_table(read_delegated(hand_built))
    rows = {(row["level"], row["name"]): row for row in table.to_pylist()}
    assert table_totals(table)["ipv4"] == 2048  # reserved and available left out
    assert rows[("country", "XA")]["ipv4_share"] == 0.5
    assert rows[("country", "XA")]["majority_ipv4"] is False
    assert rows[("country", "XB")]["majority_ipv6_64s"] is True
    assert rows[("country", "XB")]["ipv6_64s"] == 2**32
    assert rows[("rir", "test")]["majority_ipv4"] is True
    coalitions = secession(table)
    ipv4 = coalitions["ipv4"]
    assert ipv4 is not None and ipv4.members == ("XA", "XB") and ipv4.held == 1536
    assert ipv4.share == pytest.approx(0.75)
    ipv6 = coalitions["ipv6_64s"]
    assert ipv6 is not None and ipv6.members == ("XB",)
    assert "active" not in coalitions


def test_smallest_majority_known_answers() -> None:
    assert smallest_majority(["a", "b", "c", "d"], [40, 30, 20, 10]) == (("a", "b"), 70)
    assert smallest_majority(["a", "b", "c", "d"], [25, 25, 25, 25]) == (("a", "b", "c"), 75)
    assert smallest_majority(["a", "b"], [50, 50]) == (("a", "b"), 100)
    assert smallest_majority(["a"], [51], total=100) == (("a",), 51)
    assert smallest_majority(["a"], [50], total=100) is None
    assert smallest_majority([], []) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=7))
def test_greedy_coalition_is_as_small_as_brute_force(amounts: list[int]) -> None:
    names = [f"c{i}" for i in range(len(amounts))]
    total = sum(amounts)
    best = next(
        (
            size
            for size in range(1, len(amounts) + 1)
            if any(2 * sum(combo) > total for combo in itertools.combinations(amounts, size))
        ),
        None,
    )
    found = smallest_majority(names, amounts)
    assert (found is None) == (best is None)
    if found is not None:
        assert len(found[0]) == best
        assert 2 * found[1] > total


def test_census_from_csv_bitmap_and_scan(hand_built: Path, tmp_path: Path) -> None:
    delegated = read_delegated(hand_built)
    csv = tmp_path / "census.csv"
    csv.write_text("block,active\n10.0.0.0/24,30\n10.0.5.0,20\n10.0.6.0/24,5\n10.9.0.0/24,7\n")
    table = rir_table(delegated, read_census(csv))
    rows = {row["name"]: row for row in table.to_pylist() if row["level"] == "country"}
    assert (rows["XA"]["active"], rows["XB"]["active"], rows["XC"]["active"]) == (30, 20, 5)
    assert table_totals(table)["active_unmapped"] == 7
    assert table_totals(table)["active"] == 55
    assert rows["XA"]["majority_active"] is True  # 30 of 55
    coalition = secession(table)["active"]
    assert coalition is not None and coalition.members == ("XA",)

    bitmap = tmp_path / "alive.roaring"
    addresses = [0x0A000001, 0x0A000002, 0x0A000401, 0x0A000601, 0x0A000602, 0x0B000000]
    bitmap.write_bytes(BitMap(addresses).serialize())
    census = read_census(bitmap)
    assert census.total == 6
    rows = {
        row["name"]: row
        for row in rir_table(delegated, census).to_pylist()
        if row["level"] == "country"
    }
    assert (rows["XA"]["active"], rows["XB"]["active"], rows["XC"]["active"]) == (2, 1, 2)
    assert rows["XA"]["majority_active"] is False  # 2 of 5 mapped

    replies = tmp_path / "scan.parquet"
    responders = np.array([0x0A000001, 0x0A000001, 0x0A000603], dtype=np.uint32)
    pq.write_table(
        pa.table({"ts": [1, 2, 3], "target": responders, "responder": responders}), replies
    )
    assert read_census(replies).total == 2  # distinct responders


def test_census_errors(tmp_path: Path) -> None:
    bad = tmp_path / "census.csv"
    bad.write_text("block,active\n10.0.0.0/24,3\n10.0.300.0/24,4\n")
    with pytest.raises(InputError, match=r"census.csv:3: .*not an IPv4 block"):
        read_census(bad)
    bad.write_text("10.0.0.0/24,3\n10.0.1.0/24,lots\n")
    with pytest.raises(InputError, match=r"census.csv:2: expected 'block,active'"):
        read_census(bad)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputError, match="not an IP-set file"):
        read_census(junk)


def test_cli_json_and_outputs(hand_built: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "rir.parquet"
    result = runner.invoke(cli, ["reach", "rir", str(hand_built), "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["totals"]["ipv4"] == 2048
    assert payload["majority"]["country"]["ipv4"] is None
    assert payload["majority"]["rir"]["ipv4"] == "test"
    assert payload["secession"]["country"]["ipv4"]["members"] == ["XA", "XB"]
    assert pq.read_table(out).num_rows == len(payload["rows"])
    text = runner.invoke(cli, ["reach", "rir", str(hand_built), "--top", "2"])
    assert text.exit_code == 0
    assert "smallest country coalition (IPv4): 2 countries hold 75.0%: XA, XB" in text.stdout


def test_cli_bad_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "delegated-bad"
    bad.write_text(HAND_BUILT.replace("10.0.4.0|512", "10.0.4.0|five hundred"))
    with pytest.raises(SystemExit) as caught:
        main(["reach", "rir", str(bad)])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"liveness: error: {bad}:5: value 'five hundred' is not an integer"
