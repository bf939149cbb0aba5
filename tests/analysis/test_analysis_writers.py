"""Files written by the output layer's writers (every format, and a crashed scan) analyse alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from analysis_replies import WriteReplies, reply_table
from handmade_rows import ROWS

from liveness.analysis import ANALYSES, summarize
from liveness.output.writers import open_writer


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_writer_output_gives_the_same_analyses(
    suffix: str, tmp_path: Path, write_replies: WriteReplies
) -> None:
    expected = summarize([write_replies(ROWS, "reference.parquet")])
    path = str(tmp_path / f"scan.{suffix}")
    with open_writer(path) as writer:
        writer.write(reply_table(ROWS))
    got = summarize([path])
    for key in (*ANALYSES, "probes", "address_map"):
        assert got[key] == expected[key], key


def test_crashed_scan_is_read_from_its_journal(tmp_path: Path, write_replies: WriteReplies) -> None:
    expected = summarize([write_replies(ROWS, "reference.parquet")])
    path = str(tmp_path / "crashed.parquet")
    writer = open_writer(path)
    writer.write(reply_table(ROWS))
    writer.flush()  # rows survive a crash; the file is never closed
    got = summarize([path])
    assert got["inputs"]["rows"] == len(ROWS)
    for key in ANALYSES:
        assert got[key] == expected[key], key
