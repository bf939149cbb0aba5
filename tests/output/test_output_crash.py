"""Crash safety: a writer killed with SIGKILL loses nothing it flushed; --resume continues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pytest
from output_fixtures import random_replies, same_rows

from liveness.output import REPLY_COLUMNS, REPLY_SCHEMA, journal_path, open_writer, read_replies

ROWS_PER_BATCH = 200
HERE = Path(__file__).parent

CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from output_fixtures import random_replies, same_rows
    from liveness.output import REPLY_COLUMNS, open_writer

    writer = open_writer(sys.argv[1], fields=list(REPLY_COLUMNS))
    index = 0
    while True:
        writer.write(random_replies({rows}, seed=index, app=True))
        index += 1
        if index % 5 == 0:
            writer.flush()
            print("flushed", writer.rows_written, flush=True)
        time.sleep(0.005)
    """
).format(rows=ROWS_PER_BATCH)


def expected_prefix(rows: int) -> pa.Table:
    batches = [
        random_replies(ROWS_PER_BATCH, seed=i, app=True) for i in range(rows // ROWS_PER_BATCH + 1)
    ]
    return pa.Table.from_batches(batches).slice(0, rows)


def read_all(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(read_replies(str(path))), schema=REPLY_SCHEMA)


def run_and_kill(path: Path) -> int:
    """Run a writer in a subprocess, SIGKILL it mid-write; return the rows it said were flushed."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(HERE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    flushed = 0
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while flushed < 6000 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            flushed = int(line.split()[1])
        time.sleep(0.05)  # let it write unflushed rows too, so the kill tears something
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        for line in child.stdout:  # reports printed before the kill also count
            flushed = int(line.split()[1])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert flushed >= 6000, "the writer did not get going"
    return flushed


@pytest.mark.parametrize("extension", ["parquet", "csv", "jsonl"])
def test_sigkill_keeps_flushed_rows_and_resume_continues(tmp_path: Path, extension: str) -> None:
    path = tmp_path / f"scan.{extension}"
    flushed = run_and_kill(path)
    if extension == "parquet":
        assert not path.exists() and os.path.exists(journal_path(str(path)))
    recovered = read_all(path)
    assert recovered.num_rows >= flushed
    assert same_rows(recovered, expected_prefix(recovered.num_rows))

    extra = random_replies(50, seed=10_000, app=True)
    with open_writer(str(path), resume=True, fields=list(REPLY_COLUMNS)) as writer:
        writer.write(extra)
    final = read_all(path)
    assert same_rows(final, pa.concat_tables([recovered, pa.Table.from_batches([extra])]))
    assert not os.path.exists(journal_path(str(path)))


def test_torn_journal_is_read_to_its_last_complete_message(tmp_path: Path) -> None:
    path = tmp_path / "scan.parquet"
    first, second = random_replies(300, seed=1), random_replies(300, seed=2)
    writer = open_writer(str(path))
    writer.write(first)
    writer.flush()
    writer.write(second)
    writer.flush()
    journal = Path(journal_path(str(path)))
    journal.write_bytes(journal.read_bytes()[:-7])  # as if killed inside the second write
    assert same_rows(read_all(path), pa.Table.from_batches([first]))

    with open_writer(str(path), resume=True) as resumed:
        resumed.write(second)
    assert same_rows(read_all(path), pa.Table.from_batches([first, second]))


def test_resume_after_a_finished_scan_appends(tmp_path: Path) -> None:
    path = tmp_path / "scan.parquet"
    first, second = random_replies(100, seed=1), random_replies(100, seed=2)
    with open_writer(str(path)) as writer:
        writer.write(first)
    with open_writer(str(path), resume=True) as writer:
        writer.write(second)
    assert same_rows(read_all(path), pa.Table.from_batches([first, second]))
    with open_writer(str(path)) as writer:  # without resume: a fresh file
        writer.write(second)
    assert same_rows(read_all(path), pa.Table.from_batches([second]))


def test_a_failing_write_keeps_earlier_rows(tmp_path: Path) -> None:
    path = tmp_path / "scan.parquet"
    rows = random_replies(100)
    with pytest.raises(ValueError), open_writer(str(path)) as writer:
        writer.write(rows)
        writer.write(rows.select(["ts", "probe"]))  # not a reply batch
    assert same_rows(read_all(path), pa.Table.from_batches([rows]))
