"""Observations from scan outputs: a block is up for a VP in a round when an address in it
answered from itself; silent probed blocks are down only when the probed list is given."""

from __future__ import annotations

import io
import ipaddress
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from liveness.errors import InputError
from liveness.output.schema import REPLY_SCHEMA
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.readers import detect_kind, read_observations
from liveness.reach.scans import observations_from_scans

NS = 1_000_000_000


def _ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def _write_scan(path: Path, vp: str, replies: list[tuple[float, str, str, str]]) -> Path:
    """Replies (seconds, target, responder, category) as a REPLY_SCHEMA Parquet file."""
    count = len(replies)
    columns = {
        "ts": [int(seconds * NS) for seconds, _, _, _ in replies],
        "probe": ["icmp_echo"] * count,
        "target": [_ip(target) for _, target, _, _ in replies],
        "responder": [_ip(responder) for _, _, responder, _ in replies],
        "reply": [category for _, _, _, category in replies],
        "icmp_type": [0] * count,
        "icmp_code": [0] * count,
        "tcp_flags": [0] * count,
        "ttl": [64] * count,
        "ipid": [0] * count,
        "sport": [0] * count,
        "dport": [0] * count,
        "attempt": [0] * count,
        "repeat": [False] * count,
        "app_valid": [False] * count,
        "vp": [vp] * count,
        "af": [4] * count,
        "target6": [None] * count,
        "responder6": [None] * count,
        "app_active": [False] * count,
        "app_proto": [""] * count,
        "banner": [None] * count,
    }
    plain = pa.schema(
        [
            pa.field(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type)
            for f in REPLY_SCHEMA
        ]
    )
    table = pa.Table.from_pydict(columns, schema=plain).cast(REPLY_SCHEMA)
    pq.write_table(table, path)
    return path


def _rows(table: pa.Table) -> list[tuple[str, str, int, int, str]]:
    return sorted((r["vp"], r["target"], r["t0"], r["t1"], r["status"]) for r in table.to_pylist())


@pytest.fixture
def two_vps(tmp_path: Path) -> list[Path]:
    """Two scans by VP a (back to back) and two by VP b (with a gap between them)."""
    a1 = _write_scan(
        tmp_path / "a1.parquet",
        "a",
        [
            (10.0, "198.18.1.5", "198.18.1.5", "echo_reply"),
            (20.0, "198.18.2.7", "198.18.9.1", "icmp_unreach"),  # a router: not the target
        ],
    )
    a2 = _write_scan(
        tmp_path / "a2.parquet",
        "a",
        [
            (700.0, "198.18.1.9", "198.18.1.9", "rst"),
            (800.0, "198.18.2.7", "198.18.2.7", "echo_reply"),
        ],
    )
    b1 = _write_scan(
        tmp_path / "b1.parquet",
        "b",
        [(15.0, "198.18.2.1", "198.18.2.1", "synack"), (100.0, "198.18.3.4", "198.18.3.4", "udp")],
    )
    b2 = _write_scan(
        tmp_path / "b2.parquet", "b", [(2000.0, "198.18.3.4", "198.18.3.4", "echo_reply")]
    )
    return [a1, a2, b1, b2]


def test_up_only_without_probed_blocks(two_vps: list[Path]) -> None:
    table = observations_from_scans(two_vps)
    assert table.schema.equals(OBSERVATION_SCHEMA)
    assert _rows(table) == [
        ("a", "198.18.1.0/24", 0, 1320, "up"),  # two back-to-back scans join
        ("a", "198.18.2.0/24", 660, 1320, "up"),  # the router's error in scan 1 is no answer
        ("b", "198.18.2.0/24", 0, 660, "up"),
        ("b", "198.18.3.0/24", 0, 660, "up"),
        ("b", "198.18.3.0/24", 1980, 2640, "up"),  # a gap between scans stays a hole
    ]


def test_probed_blocks_make_silence_down(two_vps: list[Path]) -> None:
    probed = [_ip("198.18.1.0"), _ip("198.18.2.200"), _ip("198.18.3.0"), _ip("198.18.4.0")]
    table = observations_from_scans(two_vps, probed_blocks=np.array(probed, np.uint32))
    expected = [
        ("a", "198.18.1.0/24", 0, 1320, "up"),
        ("a", "198.18.2.0/24", 0, 660, "down"),
        ("a", "198.18.2.0/24", 660, 1320, "up"),
        ("a", "198.18.3.0/24", 0, 1320, "down"),
        ("a", "198.18.4.0/24", 0, 1320, "down"),
        ("b", "198.18.1.0/24", 0, 660, "down"),
        ("b", "198.18.1.0/24", 1980, 2640, "down"),
        ("b", "198.18.2.0/24", 0, 660, "up"),
        ("b", "198.18.2.0/24", 1980, 2640, "down"),
        ("b", "198.18.3.0/24", 0, 660, "up"),
        ("b", "198.18.3.0/24", 1980, 2640, "up"),
        ("b", "198.18.4.0/24", 0, 660, "down"),
        ("b", "198.18.4.0/24", 1980, 2640, "down"),
    ]
    assert _rows(table) == expected
    seen = observations_from_scans(two_vps, probed_blocks="seen")  # 198.18.4.0 never named
    assert _rows(seen) == [row for row in expected if row[1] != "198.18.4.0/24"]
    with pytest.raises(InputError, match="probed_blocks"):
        observations_from_scans(two_vps, probed_blocks="all")


def test_a_scan_is_one_round_however_long(tmp_path: Path) -> None:
    path = _write_scan(
        tmp_path / "long.parquet",
        "c",
        [
            (100.0, "198.18.1.1", "198.18.1.1", "echo_reply"),
            (1500.0, "198.18.2.1", "198.18.2.1", "rst"),
        ],
    )
    assert _rows(observations_from_scans(path, probed_blocks="seen")) == [
        ("c", "198.18.1.0/24", 0, 1980, "up"),
        ("c", "198.18.2.0/24", 0, 1980, "up"),
    ]


def test_vp_override_round_length_and_prefix(two_vps: list[Path]) -> None:
    table = observations_from_scans(two_vps[:2], vp="site-x", round_s=3600, block_prefix=16)
    assert _rows(table) == [("site-x", "198.18.0.0/16", 0, 3600, "up")]
    with pytest.raises(InputError, match="block_prefix"):
        observations_from_scans(two_vps, block_prefix=4)


def test_dispatcher_detects_scans(two_vps: list[Path], tmp_path: Path) -> None:
    assert detect_kind(two_vps[0]) == "scan"
    assert _rows(read_observations(two_vps)) == _rows(
        observations_from_scans(two_vps, probed_blocks="seen")
    )
    saved = tmp_path / "obs.parquet"
    pq.write_table(observations_from_scans(two_vps), saved)
    assert detect_kind(saved) == "observation"
    assert _rows(read_observations([saved])) == _rows(observations_from_scans(two_vps))
    as_csv = tmp_path / "a.csv"
    replies = pq.read_table(two_vps[0])
    plain = replies.cast(
        pa.schema(
            [
                pa.field(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type)
                for f in replies.schema
            ]
        )
    )
    for name in ("target", "responder"):  # CSV reply files spell addresses dotted
        dotted = [str(ipaddress.IPv4Address(v)) for v in plain[name].to_pylist()]
        plain = plain.set_column(plain.schema.get_field_index(name), name, pa.array(dotted))
    sink = io.BytesIO()
    pacsv.write_csv(plain, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    as_csv.write_bytes(",".join(plain.column_names).encode() + b"\n" + sink.getvalue())
    assert detect_kind(as_csv) == "scan"
    assert _rows(read_observations([as_csv])) == _rows(
        observations_from_scans(two_vps[:1], probed_blocks="seen")
    )
    other = tmp_path / "other.txt"
    other.write_text("hello\n")
    with pytest.raises(InputError, match="cannot tell the kind"):
        read_observations([other])
