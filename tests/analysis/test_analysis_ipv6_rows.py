"""IPv6 rows are analysed on their own: they leave the IPv4 analyses (the summary's top level)
as they are, whatever wrote the file (Parquet directly, every writer, a crashed scan), and the
``ipv6`` section of the same hand-made rows moved to IPv6 equals their IPv4 analyses."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from handmade_rows import ROWS

from liveness.analysis import ANALYSES, summarize
from liveness.analysis.report import write_report
from liveness.analysis.source import iter_reply_batches
from liveness.analysis.tables import format_headline
from liveness.errors import InputError
from liveness.output.schema import REPLY_SCHEMA
from liveness.output.writers import open_writer

KEYS = (*ANALYSES, "probes", "address_map")
_ICMP_TYPES = {"icmp_unreach": 3, "icmp_time_exceeded": 11, "icmp_param_problem": 12}
_ICMP6_TYPES = {"icmp_unreach": 1, "icmp_time_exceeded": 3, "icmp_param_problem": 4}


def table(rows: Sequence[tuple[Any, ...]], families: Sequence[int]) -> pa.Table:
    """A reply table from the hand-made rows' shape; ``families[i]`` is row i's ``af`` (its
    addresses are then IPv4 dotted quads or IPv6 text)."""
    columns: dict[str, list[Any]] = {name: [] for name in REPLY_SCHEMA.names}
    for i, ((probe, target, responder, reply, code, attempt, app_valid), af) in enumerate(
        zip(rows, families, strict=True)
    ):
        ipv6 = af == 6
        columns["ts"].append(1_000_000 * i)
        columns["probe"].append(probe)
        columns["target"].append(0 if ipv6 else int(ipaddress.IPv4Address(target)))
        columns["responder"].append(0 if ipv6 else int(ipaddress.IPv4Address(responder)))
        columns["reply"].append(reply)
        types = _ICMP6_TYPES if ipv6 else _ICMP_TYPES
        echo = 129 if ipv6 else 0
        columns["icmp_type"].append(
            echo
            if reply == "echo_reply"
            else types.get(reply, -1 if code < 0 else types["icmp_unreach"])
        )
        columns["icmp_code"].append(code)
        columns["tcp_flags"].append({"synack": 0x12, "rst": 0x14}.get(reply, 0))
        columns["ttl"].append(64)
        columns["ipid"].append(0 if ipv6 else i)
        port = probe.split(":")[1] if ":" in probe else "0"
        columns["sport"].append(40000 if port == "random" else int(port))
        columns["dport"].append(50000)
        columns["attempt"].append(attempt)
        columns["repeat"].append(False)
        columns["app_valid"].append(app_valid)
        columns["vp"].append("vp0")
        columns["af"].append(af)
        columns["target6"].append(ipaddress.IPv6Address(target).packed if ipv6 else None)
        columns["responder6"].append(ipaddress.IPv6Address(responder).packed if ipv6 else None)
        columns["app_active"].append(False)
        columns["app_proto"].append("")
        columns["banner"].append(None)
    return pa.Table.from_pydict(columns, schema=REPLY_SCHEMA)


def as_ipv6(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The hand-made row moved to IPv6: 198.18.x.y -> 2001:2:0:x::y (RFC 5180 benchmarking),
    so that each /24 becomes one /64."""
    probe, target, responder, *rest = row

    def six(address: str) -> str:
        x, y = address.split(".")[2:]
        return f"2001:2:0:{x}::{y}"

    return (probe, six(target), six(responder), *rest)


IPV4 = table(ROWS, [4] * len(ROWS))
# Every hand-made row again as IPv6, interleaved with the IPv4 rows.
MIXED_ROWS = [row for pair in zip(ROWS, map(as_ipv6, ROWS), strict=True) for row in pair]
MIXED = table(MIXED_ROWS, [4, 6] * len(ROWS))


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("reference") / "ipv4.parquet"
    pq.write_table(IPV4, path)
    return summarize([str(path)])


def test_the_ipv6_rows_would_change_the_analyses_if_counted(
    tmp_path: Path, expected: dict[str, Any]
) -> None:
    """What the skipping protects against: the same rows as IPv4 rows of address 0.0.0.0."""
    polluted = MIXED.set_column(
        MIXED.column_names.index("af"), "af", pa.array([4] * MIXED.num_rows, pa.uint8())
    )
    path = tmp_path / "polluted.parquet"
    pq.write_table(polluted, path)
    got = summarize([str(path)])
    assert got["coverage"] != expected["coverage"]


def test_parquet_with_ipv6_rows_gives_the_same_analyses(
    tmp_path: Path, expected: dict[str, Any]
) -> None:
    path = tmp_path / "mixed.parquet"
    pq.write_table(MIXED, path)
    got = summarize([str(path)])
    for key in KEYS:
        assert got[key] == expected[key], key
    assert got["inputs"]["rows"] == 2 * len(ROWS)
    assert got["families"]["ipv4"]["rows"] == got["families"]["ipv6"]["rows"] == len(ROWS)
    batches = iter_reply_batches(str(path))
    assert sum(batch.ipv4.num_rows for batch in batches) == len(ROWS)
    assert batches.ipv6_rows == len(ROWS)


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_writer_output_with_ipv6_rows_gives_the_same_analyses(
    tmp_path: Path, suffix: str, expected: dict[str, Any]
) -> None:
    path = str(tmp_path / f"scan.{suffix}")
    with open_writer(path) as writer:
        writer.write(MIXED)
    got = summarize([path], prefix6=64)
    for key in KEYS:
        assert got[key] == expected[key], key
    assert_same_as_ipv4(got["ipv6"], expected)
    batches = iter_reply_batches(path)
    assert sum(batch.ipv4.num_rows for batch in batches) == len(ROWS)
    assert batches.ipv6_rows == len(ROWS)


def test_crashed_scan_with_ipv6_rows_is_read_from_its_journal(
    tmp_path: Path, expected: dict[str, Any]
) -> None:
    path = str(tmp_path / "crashed.parquet")
    writer = open_writer(path)
    writer.write(MIXED)
    writer.flush()  # the file is never closed: read from the journal
    got = summarize([path], prefix6=64)
    for key in ANALYSES:
        assert got[key] == expected[key], key
    assert_same_as_ipv4(got["ipv6"], expected)


def test_parquet_without_af_but_with_null_ipv6_targets(
    tmp_path: Path, expected: dict[str, Any]
) -> None:
    """A Parquet file written with only the analysis columns: IPv6 rows have a null target and
    no IPv6 address to analyse; they are counted, and the IPv4 analyses are as without them."""
    path = str(tmp_path / "narrow.parquet")
    fields = ["probe", "target", "responder", "reply", "icmp_code", "attempt", "app_valid"]
    with open_writer(path, fields=fields) as writer:
        writer.write(MIXED)
    assert pq.read_table(path).column("target").null_count == len(ROWS)
    got = summarize([path])
    for key in ANALYSES:
        assert got[key] == expected[key], key
    assert got["ipv6"] is None
    batches = iter_reply_batches(path)
    assert sum(batch.ipv4.num_rows for batch in batches) == len(ROWS)
    assert (batches.ipv6_rows, batches.unaddressed6) == (0, len(ROWS))


def assert_same_as_ipv4(ipv6: dict[str, Any], ipv4: dict[str, Any]) -> None:
    """Every analysis of the IPv6 section equals the IPv4 one of the same rows (/64s for /24s)."""
    for key in (*ANALYSES, "probes"):
        assert ipv6[key] == ipv4[key], key


def test_ipv6_section_equals_the_ipv4_analyses_of_the_same_rows(
    tmp_path: Path, expected: dict[str, Any]
) -> None:
    path = tmp_path / "mixed.parquet"
    pq.write_table(MIXED, path)
    got = summarize([str(path)], prefix6=64)
    assert_same_as_ipv4(got["ipv6"], expected)
    assert got["ipv4"] == {key: got[key] for key in got["ipv4"]}
    assert got["families"]["ipv6"]["block"] == "/64"
    # the hand-made addresses sit in /64s 2001:2:0:x::, all in one /48 and one /32
    prefixes = got["ipv6"]["prefixes"]
    assert prefixes["/48"]["prefixes"] == prefixes["/32"]["prefixes"] == 1
    assert prefixes["/48"]["top"] == [
        {"prefix": "2001:2::/48", "alive": expected["coverage"]["all"]}
    ]
    default = summarize([str(path)])  # /48 blocks: every address in one
    assert default["ipv6"]["coverage"]["all_blocks"] == 1
    assert default["ipv6"]["coverage"]["all"] == expected["coverage"]["all"]


def test_ipv4_only_file_has_no_ipv6_section(expected: dict[str, Any]) -> None:
    assert expected["ipv6"] is None
    assert expected["families"]["ipv6"]["rows"] == 0


def test_ipv6_only_file(tmp_path: Path, expected: dict[str, Any]) -> None:
    """No IPv4 row: the top level is an empty IPv4 analysis, the IPv6 section is complete."""
    path = tmp_path / "ipv6.parquet"
    pq.write_table(table([as_ipv6(row) for row in ROWS], [6] * len(ROWS)), path)
    got = summarize([str(path)], prefix6=64)
    assert got["coverage"]["all"] == 0
    assert_same_as_ipv4(got["ipv6"], expected)


def test_ipv6_rows_split_over_files_and_passes_merge_to_the_same_section(
    tmp_path: Path, expected: dict[str, Any]
) -> None:
    """In one process the files number their IPv6 addresses in one book; Dask workers keep a
    book each, and the merge numbers one in the other and renumbers its bitmaps."""
    paths = []
    for i, part in enumerate((MIXED.slice(0, 17), MIXED.slice(17, 20), MIXED.slice(37))):
        paths.append(str(tmp_path / f"part{i}.parquet"))
        pq.write_table(part, paths[-1])
    for passes, workers in ((1, None), (3, None), (1, 2)):
        got = summarize(paths, prefix6=64, passes=passes, workers=workers)
        assert_same_as_ipv4(got["ipv6"], expected)
        for key in ANALYSES:
            assert got[key] == expected[key], key


def test_report_and_table_show_both_families(tmp_path: Path) -> None:
    """The HTML report gives IPv6 its own sections and the prefix picture; the terminal table
    puts the IPv6 column beside the IPv4 one."""
    path = tmp_path / "mixed.parquet"
    pq.write_table(MIXED, path)
    summary = summarize([str(path)], prefix6=64)
    out = tmp_path / "report.html"
    write_report(summary, str(out))
    text = out.read_text()
    assert "<h2>Address families</h2>" in text
    assert "<h2>Network-layer coverage (IPv4)</h2>" in text
    assert "<h2>Network-layer coverage (IPv6)</h2>" in text
    assert "<h2>Where the IPv6 addresses are</h2>" in text and "2001:2::/48" in text
    # IPv4's 7 figures (6 analyses and the address map), IPv6's 6 and its prefix picture
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 7 + 6 + 1
    table = format_headline(summary)
    assert "IPv4 alive" in table and "IPv6 alive" in table and "/64s" in table
    only4 = tmp_path / "ipv4.parquet"
    pq.write_table(IPV4, only4)
    assert "IPv6" not in format_headline(summarize([str(only4)]))


def test_ipv6_blocks_and_prefix_picture_worked_by_hand(tmp_path: Path) -> None:
    """Five alive addresses: three in 2001:2:0:1::/64, one in 2001:2:0:2::/64 (both in
    2001:2::/48) and one in 2001:2:1:1::/64 (2001:2:1::/48); a router error from 2001:2:ff::1
    for a sixth, silent target. Alive: 6 (the router too). /48s: 2001:2::, 2001:2:1::,
    2001:2:ff:: = 3; /64s: 0:1, 0:2, 1:1, ff:0 = 4. Per /48: 4, 1, 1 alive (bins "4-7": 1,
    "1": 2); one /32 holding all 6 ("4-7": 1)."""
    echo = ("icmp_echo", "", "", "echo_reply", -1, 0, False)
    rows = [
        ("icmp_echo", a, a, *echo[3:])
        for a in ("2001:2:0:1::1", "2001:2:0:1::2", "2001:2:0:1::3", "2001:2:0:2::1")
    ]
    rows.append(("tcp_syn:80", "2001:2:1:1::9", "2001:2:1:1::9", "rst", -1, 0, False))
    rows.append(("tcp_syn:80", "2001:2:0:3::5", "2001:2:ff::1", "icmp_unreach", 1, 0, False))
    path = tmp_path / "six.parquet"
    pq.write_table(table(rows, [6] * len(rows)), path)
    by48 = summarize([str(path)])["ipv6"]
    by64 = summarize([str(path)], prefix6=64)["ipv6"]
    assert by48["coverage"]["all"] == by64["coverage"]["all"] == 6
    assert by48["coverage"]["all_blocks"] == 3 and by64["coverage"]["all_blocks"] == 4
    assert by48["coverage"]["families"]["icmp"]["blocks"] == 1
    assert by64["coverage"]["families"]["icmp"]["blocks"] == 2
    assert by48["coverage"]["families"]["tcp"]["blocks"] == 2  # the RST's and the router's
    assert by48["icmp_errors"]["families"]["tcp"]["from_other_address"]["targets"] == 1
    picture = by48["prefixes"]
    assert picture["/48"]["prefixes"] == 3
    assert picture["/48"]["alive_per_prefix"] == {"1": 2, "4-7": 1}
    assert picture["/48"]["top"][0] == {"prefix": "2001:2::/48", "alive": 4}
    assert picture["/32"] == {
        "prefixes": 1,
        "alive_per_prefix": {"4-7": 1},
        "top": [{"prefix": "2001:2::/32", "alive": 6}],
    }


def test_bad_family_values_are_one_line_errors(tmp_path: Path) -> None:
    """An ``af`` of 5, or an IPv6 row without its address, names the file and the column."""
    bad_af = MIXED.set_column(
        MIXED.column_names.index("af"), "af", pa.array([5] * MIXED.num_rows, pa.uint8())
    )
    path = tmp_path / "bad-af.parquet"
    pq.write_table(bad_af, path)
    with pytest.raises(InputError, match=r"bad-af.parquet: column 'af' holds 5, not 4 or 6"):
        summarize([str(path)])
    missing = MIXED.set_column(
        MIXED.column_names.index("responder6"),
        "responder6",
        pa.nulls(MIXED.num_rows, pa.binary(16)),
    )
    path = tmp_path / "no-responder6.parquet"
    pq.write_table(missing, path)
    with pytest.raises(InputError, match=r"column 'responder6' has \d+ null IPv6 value"):
        summarize([str(path)])
