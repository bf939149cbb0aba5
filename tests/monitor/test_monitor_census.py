"""Census input: E(b) and availability from IP sets, text files and reply parquet."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from numpy.typing import NDArray
from pyroaring import BitMap

from liveness.errors import InputError
from liveness.monitor import Monitor, census_from_snapshots, load_census
from liveness.monitor.census import read_alive_addresses
from liveness.output.schema import REPLY_SCHEMA


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def test_census_csr_groups_addresses_by_block() -> None:
    census = census_from_snapshots(
        [np.array([ip("10.0.1.7"), ip("10.0.0.3"), ip("10.0.1.2"), ip("10.0.1.7")], np.uint32)]
    )
    assert census.blocks.tolist() == [ip("10.0.0.0"), ip("10.0.1.0")]
    assert census.indptr.tolist() == [0, 1, 3]
    assert census.hosts.tolist() == [3, 2, 7]
    assert census.availability is None


def test_two_snapshots_measure_availability() -> None:
    first = np.array([ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.1.1")], np.uint32)
    second = np.array([ip("10.0.0.3"), ip("10.0.1.1")], np.uint32)
    census = census_from_snapshots([first, second])
    assert census.sizes.tolist() == [3, 1]
    assert census.availability is not None
    # block 10.0.0: 2 then 1 of 3 answered -> 0.5; block 10.0.1: 1 of 1 twice -> 1.0
    assert census.availability.tolist() == pytest.approx([0.5, 1.0])


def test_the_three_file_formats_give_the_same_addresses(tmp_path: Path) -> None:
    addresses = np.array(sorted({ip("198.18.0.9"), ip("198.18.3.1"), ip("198.19.0.250")}))
    text = tmp_path / "alive.txt"
    text.write_text("# alive\n" + "".join(f"{ipaddress.IPv4Address(int(a))}\n" for a in addresses))
    roaring = tmp_path / "alive.ipset"
    roaring.write_bytes(BitMap(addresses.tolist()).serialize())
    replies = tmp_path / "replies.parquet"
    rows = addresses.size + 1
    columns = {name: np.zeros(rows, dtype=np.int64) for name in REPLY_SCHEMA.names}
    targets = np.append(addresses, ip("198.18.7.7")).astype(np.uint32)
    responders = targets.copy()
    responders[-1] = ip("198.18.7.1")  # an ICMP error from a router: the target is not alive
    table = pa.table(
        {
            "ts": columns["ts"],
            "probe": pa.array(["icmp_echo"] * rows).dictionary_encode(),
            "target": pa.array(targets, pa.uint32()),
            "responder": pa.array(responders, pa.uint32()),
        }
    )
    pq.write_table(table, replies)
    for path in (text, roaring, replies):
        assert read_alive_addresses(path).tolist() == addresses.tolist(), path


def test_text_with_odd_spacing_uses_the_careful_parser(tmp_path: Path) -> None:
    text = tmp_path / "alive.txt"
    text.write_text("10.0.0.1  \n\n 10.0.0.2 # a comment\n")
    assert read_alive_addresses(text).tolist() == [ip("10.0.0.1"), ip("10.0.0.2")]


def test_bad_census_lines_name_file_and_line(tmp_path: Path) -> None:
    text = tmp_path / "alive.txt"
    text.write_text("10.0.0.1\n10.0.0.300\n")
    with pytest.raises(InputError, match=r"alive.txt:2: '10.0.0.300'"):
        load_census(text)
    with pytest.raises(InputError, match="cannot read census"):
        load_census(tmp_path / "missing.txt")


def test_monitor_from_census_uses_its_availability() -> None:
    rng = np.random.default_rng(0)
    snapshots = [
        (ip("10.0.0.0") + rng.choice(256, 100, replace=False)).astype(np.uint32) for _ in range(3)
    ]
    census = census_from_snapshots(snapshots)
    monitor = Monitor.from_census(census, vp="v")
    assert census.availability is not None
    result = monitor.run_round(_Silent(), 0, 0)
    assert result.a_oper[0] == pytest.approx(census.availability[0])
    assert 0.3 < census.availability[0] < 0.6


class _Silent:
    def probe(self, addresses: NDArray[np.uint32]) -> NDArray[np.bool_]:
        return np.zeros(addresses.size, dtype=bool)
