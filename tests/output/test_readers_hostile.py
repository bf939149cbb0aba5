"""``read_replies`` against hostile paths (issue 18): each refusal says what the path is."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pyarrow as pa
import pytest
from output_fixtures import random_replies

from liveness.errors import InputError
from liveness.output.readers import check_reply_path, read_replies
from liveness.output.writers import open_writer


def _read(path: Path | str) -> int:
    return sum(batch.num_rows for batch in read_replies(str(path)))


@pytest.mark.parametrize("name", ["scan.parquet", "scan.csv", "scan.jsonl", "scan"])
def test_a_directory_is_named_a_directory(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    with pytest.raises(InputError, match="is a directory") as caught:
        _read(tmp_path / name)
    assert "truncated" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "result"),
    [("scan.parquet.journal", "scan.parquet"), ("scan.csv.partial", "scan.csv")],
)
def test_a_working_file_names_the_result_to_give(tmp_path: Path, name: str, result: str) -> None:
    (tmp_path / name).write_bytes(b"whatever a running scan has written so far")
    with pytest.raises(InputError) as caught:
        _read(tmp_path / name)
    message = str(caught.value)
    assert "running" in message and f"give {tmp_path / result}" in message
    assert "truncated" not in message


def test_the_result_of_a_running_scan_reads_its_journal(tmp_path: Path) -> None:
    """What the refusal above tells the user to do works: the journal is read through the
    result's name while the scan runs."""
    path = tmp_path / "scan.parquet"
    writer = open_writer(str(path))
    writer.write(random_replies(10))
    writer.flush()
    try:
        assert not path.exists() and Path(f"{path}.journal").exists()
        assert _read(path) == 10
    finally:
        writer.close()
    assert _read(path) == 10


def test_devices_are_refused_unread(tmp_path: Path) -> None:
    for name in ("zero.csv", "zero.parquet"):
        target = tmp_path / name
        if os.geteuid() == 0:
            os.mknod(target, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: never ends
        else:
            target.symlink_to("/dev/zero")
        with pytest.raises(InputError, match="is a device"):
            _read(target)


def test_empty_and_binary_csv_say_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="missing column header"):
        _read(empty)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError, match="all 16 reply columns"):
        _read(binary)
    jsonl = tmp_path / "binary.jsonl"
    jsonl.write_bytes(bytes(range(128, 256)) + b"\n")
    with pytest.raises(InputError, match="not UTF-8"):
        _read(jsonl)


def test_check_reply_path_accepts_plain_names() -> None:
    for name in ("a.parquet", "a.csv", "journal.parquet", "partial.csv", ".journal"):
        check_reply_path(name)
    assert pa.Table.from_batches([random_replies(1)]).num_rows == 1
