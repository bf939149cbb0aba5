"""IPv6 rows in a reply file leave the (IPv4) analyses as they are: they are skipped, not
counted as 0.0.0.0, whatever wrote the file (Parquet directly, every writer, a crashed scan)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from handmade_rows import ROWS

from liveness.analysis import ANALYSES, summarize
from liveness.analysis.source import iter_reply_batches
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
    return pa.Table.from_pydict(columns, schema=REPLY_SCHEMA)


def as_ipv6(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The hand-made row moved to IPv6: 198.18.x.y -> 2001:2::x:y (RFC 5180 benchmarking)."""
    probe, target, responder, *rest = row

    def six(address: str) -> str:
        x, y = address.split(".")[2:]
        return f"2001:2::{x}:{y}"

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
    assert got["inputs"]["rows"] == len(ROWS)  # the IPv4 rows
    batches = iter_reply_batches(str(path))
    assert sum(batch.num_rows for batch in batches) == len(ROWS)
    assert batches.ipv6_rows == len(ROWS)


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_writer_output_with_ipv6_rows_gives_the_same_analyses(
    tmp_path: Path, suffix: str, expected: dict[str, Any]
) -> None:
    path = str(tmp_path / f"scan.{suffix}")
    with open_writer(path) as writer:
        writer.write(MIXED)
    got = summarize([path])
    for key in KEYS:
        assert got[key] == expected[key], key
    batches = iter_reply_batches(path)
    assert sum(batch.num_rows for batch in batches) == len(ROWS)
    assert batches.ipv6_rows == len(ROWS)


def test_crashed_scan_with_ipv6_rows_is_read_from_its_journal(
    tmp_path: Path, expected: dict[str, Any]
) -> None:
    path = str(tmp_path / "crashed.parquet")
    writer = open_writer(path)
    writer.write(MIXED)
    writer.flush()  # the file is never closed: read from the journal
    got = summarize([path])
    for key in ANALYSES:
        assert got[key] == expected[key], key


def test_parquet_without_af_but_with_null_ipv6_targets(
    tmp_path: Path, expected: dict[str, Any]
) -> None:
    """A Parquet file written with only the analysis columns: IPv6 rows have a null target."""
    path = str(tmp_path / "narrow.parquet")
    fields = ["probe", "target", "responder", "reply", "icmp_code", "attempt", "app_valid"]
    with open_writer(path, fields=fields) as writer:
        writer.write(MIXED)
    assert pq.read_table(path).column("target").null_count == len(ROWS)
    got = summarize([path])
    for key in ANALYSES:
        assert got[key] == expected[key], key
