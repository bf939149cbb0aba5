"""List files (``-w``, ``-b``, ``-I``) against hostile inputs (issue 18): a bad value is quoted
as a short excerpt, never echoed whole; devices and directories are refused unread."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from liveness.errors import InputError
from liveness.targets import parse_cidr, read_cidr_list
from liveness.targets.inputs import EXCERPT_CHARS, check_input_file, excerpt


def test_excerpt_cuts_long_values() -> None:
    assert excerpt("10.0.0.1") == "'10.0.0.1'"
    cut = excerpt("x" * 2_000_000)
    assert cut.startswith("'" + "x" * EXCERPT_CHARS + "…'") and "2000000 characters" in cut
    assert len(cut) < 2 * EXCERPT_CHARS


@pytest.mark.parametrize(
    "line", ["x" * 2_000_000, "1.2.3.4/" + "9" * 2_000_000, "1.2.3." + "9" * 2_000_000]
)
def test_a_huge_line_is_quoted_once_and_short(tmp_path: Path, line: str) -> None:
    path = tmp_path / "allow.txt"
    path.write_text(f"198.18.0.0/24\n{line}\n")
    with pytest.raises(InputError) as caught:
        read_cidr_list(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: ") and len(message) < 300, message[:500]
    assert message.count("9" * 40) + message.count("x" * 40) == 1  # quoted once, not twice


def test_a_huge_flag_value_is_short() -> None:
    with pytest.raises(InputError) as caught:
        parse_cidr("y" * 100_000, "-w/--allowlist-file")
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    ("make", "word"),
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.symlink_to("/dev/zero"), "is a device"),  # it never ends: not read at all
        (lambda p: None, "no such file"),
    ],
)
def test_not_a_file_is_refused_unread(
    tmp_path: Path, make: Callable[[Path], object], word: str
) -> None:
    path = tmp_path / "list.txt"
    make(path)
    with pytest.raises(InputError, match=word):
        read_cidr_list(path)
    with pytest.raises(InputError, match=word):
        check_input_file(path)


def test_a_pipe_is_read(tmp_path: Path) -> None:
    """A FIFO (``-w <(...)``) is a file a reader can finish: accepted."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(
        [sys.executable, "-c", f"open({str(fifo)!r}, 'w').write('198.18.0.0/30\\n')"]
    )
    try:
        assert read_cidr_list(fifo).block(0) == "198.18.0.0/30"
    finally:
        writer.wait(timeout=30)


def test_scan_allowlist_huge_line_is_one_short_line(tmp_path: Path) -> None:
    path = tmp_path / "allow.txt"
    path.write_text("198.18.0.0/30\n" + "z" * 2_000_000 + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "liveness.cli.main", "scan", "-d", "-w", str(path), "198.18.0.0/30"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and len(done.stderr) < 400, done.stderr[:500]
    assert done.stderr.count("\n") == 1 and f"{path}:2:" in done.stderr
