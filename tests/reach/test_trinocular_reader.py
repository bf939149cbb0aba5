"""Trinocular-format files: reading (old and new headers, compression, comments), writing,
run-length merging, and clear errors for malformed lines."""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness.errors import InputError
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.trinocular import (
    read_trinocular,
    read_trinocular_rows,
    vp_name_from_path,
    write_trinocular,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "reach"
OLD_FILE = DATA / "w-a_long.fsdb"


def _rows(table):  # (vp, target, t0, t1, status) sorted
    return sorted((r["vp"], r["target"], r["t0"], r["t1"], r["status"]) for r in table.to_pylist())


def test_old_header_with_a_long_comments_and_short_blocks() -> None:
    table = read_trinocular([OLD_FILE])
    assert table.schema.equals(OBSERVATION_SCHEMA)
    assert _rows(table) == [
        ("w-a_long", "10.0.1.0/24", 1000, 1660, "down"),
        ("w-a_long", "10.0.1.0/24", 1660, 2320, "unknown"),
        ("w-a_long", "10.0.1.0/24", 2320, 2980, "up"),
        ("w-a_long", "192.168.1.0/24", 1000, 2320, "up"),
        ("w-a_long", "192.168.1.0/24", 2320, 2980, "down"),
    ]
    assert set(table["af"].to_pylist()) == {4}


def test_rows_parse_hex_blocks_and_columns_by_name() -> None:
    rows = read_trinocular_rows(OLD_FILE)
    assert rows.block.tolist() == [0xC0A80100, 0x0A000100] * 3
    assert rows.round_no.tolist() == [0, 0, 1, 1, 2, 2]
    assert rows.status.tolist() == [1, 0, 1, 2, 0, 1]


def test_block_spellings(tmp_path: Path) -> None:
    path = tmp_path / "s.fsdb"
    lines = ["c0a80100", "C0A80200", "a000100", "58bae2", "1", "0b00000f"]
    path.write_text(
        "#fsdb -F t block round_no round_start_epoch status\n"
        + "".join(f"{block}\t0\t0\t1\n" for block in lines)
    )
    assert read_trinocular_rows(path).block.tolist() == [
        0xC0A80100,
        0xC0A80200,
        0x0A000100,  # a leading zero dropped
        0x58BAE200,  # A7: the 24-bit prefix
        0x00000100,
        0x0B000000,  # host bits are masked off
    ]


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress), ("", bytes)],
)
def test_compressed_files_read_the_same(tmp_path: Path, suffix: str, compress) -> None:
    path = tmp_path / f"w-a_long.fsdb{suffix}"
    path.write_bytes(compress(OLD_FILE.read_bytes()))
    assert _rows(read_trinocular(path)) == _rows(read_trinocular(OLD_FILE))


def test_vp_names_from_stem_and_argument(tmp_path: Path) -> None:
    assert vp_name_from_path("pinger-w4.e1507326545.a30w.fsdb.bz2") == "pinger-w4.e1507326545.a30w"
    assert vp_name_from_path("c.fsdb") == "c"
    table = read_trinocular([OLD_FILE, OLD_FILE], vp_names=["w", "j"])
    assert sorted(set(table["vp"].to_pylist())) == ["j", "w"]
    assert table.num_rows == 10
    with pytest.raises(InputError, match="vp_names"):
        read_trinocular([OLD_FILE], vp_names=["a", "b"])


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "e.fsdb.gz"
    blocks = np.array([0x01020300, 0xFFFFFF00], dtype=np.uint32)
    round_no = np.repeat(np.arange(4), 2)
    statuses = np.array([1, 0, 1, 0, 0, 0, 2, 1])
    written = write_trinocular(
        path, np.tile(blocks, 4), round_no, 5000 + 660 * round_no, statuses, comment="test"
    )
    assert written == 8
    text = gzip.decompress(path.read_bytes()).decode()
    assert text.splitlines()[0].startswith("#fsdb -F t block round_no round_start_epoch")
    assert "01020300\t0\t5000\t" in text
    assert _rows(read_trinocular(path)) == [
        ("e", "1.2.3.0/24", 5000, 6320, "up"),
        ("e", "1.2.3.0/24", 6320, 6980, "down"),
        ("e", "1.2.3.0/24", 6980, 7640, "unknown"),
        ("e", "255.255.255.0/24", 5000, 6980, "down"),
        ("e", "255.255.255.0/24", 6980, 7640, "up"),
    ]


def test_changes_only_file_and_max_gap(tmp_path: Path) -> None:
    """A row holds until the block's next row; max_gap_s turns long silences into holes."""
    path = tmp_path / "n.fsdb"
    write_trinocular(path, [0x0A000000] * 3, [0, 10, 20], [0, 6600, 13200], [1, 0, 1])
    assert _rows(read_trinocular(path)) == [
        ("n", "10.0.0.0/24", 0, 6600, "up"),
        ("n", "10.0.0.0/24", 6600, 13200, "down"),
        ("n", "10.0.0.0/24", 13200, 13860, "up"),
    ]
    holes = read_trinocular(path, max_gap_s=660)
    assert _rows(holes) == [
        ("n", "10.0.0.0/24", 0, 660, "up"),
        ("n", "10.0.0.0/24", 6600, 7260, "down"),
        ("n", "10.0.0.0/24", 13200, 13860, "up"),
    ]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("c0a80100\t3\t2980\t0.8\t0.7\t0.4\t1", "expected 12 fields"),
        ("zz0a0100\t3\t2980\t0.8\t0.7\t0.4\t1\t0.01\t1\t0\t-\t0", "not a hex"),
        ("c0a80100\tx\t2980\t0.8\t0.7\t0.4\t1\t0.01\t1\t0\t-\t0", "round_no"),
        ("c0a80100\t3\t2980\t0.8\t0.7\t0.4\t7\t0.01\t1\t0\t-\t0", "status"),
        ("c0a80100\t3\t\t0.8\t0.7\t0.4\t1\t0.01\t1\t0\t-\t0", "round_start_epoch"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    lines = OLD_FILE.read_text().splitlines()
    lines.insert(5, bad_line)  # becomes line 6
    path = tmp_path / "bad.fsdb"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=message) as caught:
        read_trinocular(path)
    assert f"{path}:6:" in str(caught.value)


def test_whitespace_separated_file(tmp_path: Path) -> None:
    """-F D (FSDB's default): fields split on runs of spaces and tabs."""
    path = tmp_path / "d.fsdb"
    path.write_text(
        "#fsdb block round_no round_start_epoch status\n0a000000   0 \t 0   1\n0a000000 1 660 0  \n"
    )
    assert _rows(read_trinocular(path)) == [
        ("d", "10.0.0.0/24", 0, 660, "up"),
        ("d", "10.0.0.0/24", 660, 1320, "down"),
    ]
    path.write_text("#fsdb -F S block round_no round_start_epoch status\n")
    with pytest.raises(InputError, match="-F S not supported"):
        read_trinocular(path)


def test_not_fsdb_and_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "x.fsdb"
    path.write_text("block\tstatus\n")
    with pytest.raises(InputError, match=r"x.fsdb:1: not an FSDB"):
        read_trinocular(path)
    path.write_text("#fsdb -F t block round_no status\n")
    with pytest.raises(InputError, match="round_start_epoch"):
        read_trinocular(path)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=30), min_size=1, max_size=5)
)
def test_intervals_expand_back_to_the_rounds(tmp_path_factory, statuses) -> None:
    """Every round of every block is covered by exactly one interval with its status."""
    rounds = min(len(per_block) for per_block in statuses)
    blocks = np.arange(len(statuses), dtype=np.uint32) << np.uint32(8)
    grid = np.array([per_block[:rounds] for per_block in statuses])  # block x round
    round_no = np.tile(np.arange(rounds), len(statuses))
    path = tmp_path_factory.mktemp("t") / "v.fsdb"
    write_trinocular(path, np.repeat(blocks, rounds), round_no, 660 * round_no, grid.ravel())
    table = read_trinocular(path)
    names = ["down", "up", "unknown"]
    for index in range(len(statuses)):
        target = f"0.0.{index}.0/24"
        mine = sorted(
            (r["t0"], r["t1"], r["status"]) for r in table.to_pylist() if r["target"] == target
        )
        expanded = [names.index(status) for t0, t1, status in mine for _ in range((t1 - t0) // 660)]
        assert expanded == grid[index].tolist()
        assert all(a[2] != b[2] for a, b in itertools.pairwise(mine))  # merged


def test_files_of_one_vp_join_and_up_wins_at_the_same_round(tmp_path: Path) -> None:
    first, second = tmp_path / "w1.fsdb", tmp_path / "w2.fsdb.bz2"
    write_trinocular(first, [0x0A000000] * 3, [0, 1, 2], [0, 660, 1320], [0, 0, 2])
    write_trinocular(second, [0x0A000000] * 2, [0, 1], [1320, 1980], [1, 1])  # restarted batch
    table = read_trinocular([first, second], vp_names={str(first): "w", str(second): "w"})
    assert _rows(table) == [
        ("w", "10.0.0.0/24", 0, 1320, "down"),
        ("w", "10.0.0.0/24", 1320, 2640, "up"),  # up beats unknown at 1320
    ]
