"""Hostile inputs to ``analyze``, ``report`` and ``ipset`` (issue 18): one line, exit 2, the
outputs either whole or untouched, stdout failures named."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from analysis_replies import Row, WriteReplies

from liveness.cli.main import main

LIVENESS = [sys.executable, "-m", "liveness.cli.main"]
GOOD: list[Row] = [
    ("icmp_echo", "198.18.0.1", "198.18.0.1", "echo_reply", -1, 0, False),
    ("tcp_syn:443", "198.18.0.2", "198.18.0.2", "synack", -1, 0, False),
]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``liveness ARGS`` in-process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("liveness: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def summary(
    write_replies: WriteReplies, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    path = tmp_path / "summary.json"
    assert _run(["analyze", write_replies(GOOD, "scan.parquet"), "-o", str(path)], capsys)[0] == 0
    return path


@pytest.mark.parametrize("flag", ["--summary", "-m"])
def test_report_binary_json_input_is_one_line(
    flag: str, summary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)) * 4)
    args = ["report", flag, str(binary), "-o", str(tmp_path / "r.html")]
    if flag == "-m":
        args += ["--summary", str(summary)]
    code, _, err = _run(args, capsys)
    assert code == 2
    _one_error_line(err, str(binary), "not UTF-8")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("change", "word"),
    [  # each a function of the good summary
        (lambda s: {k: 5 for k in s}, "not JSON objects"),  # the right keys, wrong types
        (lambda s: {**s, "inputs": {"files": "x", "errors": 0}}, "inputs"),
        (lambda s: {**s, "headline": {"x": 1}}, "KeyError"),  # wrong deep inside
        (lambda s: {**s, "tarpits": {**s["tarpits"], "ports": [1, 2]}}, "not a liveness summary"),
    ],
)
def test_report_summary_of_wrong_types_is_one_line(
    change: Callable[[dict[str, Any]], dict[str, Any]],
    word: str,
    summary: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(change(json.loads(summary.read_text()))))
    out = tmp_path / "r.html"
    out.write_text("earlier report\n")
    code, _, err = _run(["report", "--summary", str(bad), "-o", str(out)], capsys)
    assert code == 2
    _one_error_line(err, str(bad), word)
    assert out.read_text() == "earlier report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.json",
        "r.html",
        "scan.parquet",
        "summary.json",
    ]


def test_analyze_dask_garbage_is_refused_at_once(
    write_replies: WriteReplies, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code, _, err = _run(["analyze", write_replies(GOOD, "s.parquet"), "--dask", "garbage"], capsys)
    assert code == 2 and time.monotonic() - started < 10
    _one_error_line(err, "--dask", "'garbage'")


def test_analyze_output_directory_leaves_no_tmp(
    write_replies: WriteReplies, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = write_replies(GOOD, "s.parquet")
    target = tmp_path / "results"
    target.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = _run(["analyze", scan, "-o", str(target)], capsys)
    assert code == 2
    _one_error_line(err, str(target), "is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no results.tmp
    assert not any(target.iterdir())


def test_analyze_output_replaced_whole_or_not_at_all(
    write_replies: WriteReplies, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = write_replies(GOOD, "s.parquet")
    out = tmp_path / "summary.json"
    out.write_text("earlier\n")
    out.chmod(0o640)
    code, _, _ = _run(["analyze", scan, str(tmp_path / "absent.parquet"), "-o", str(out)], capsys)
    assert code == 2  # one input unreadable: the others' summary is still written, whole
    assert json.loads(out.read_text())["inputs"]["errors"] == 1
    assert out.stat().st_mode & 0o777 == 0o640  # the earlier file's mode is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.parquet", "summary.json"]


def test_output_to_a_device_is_written_in_place(
    write_replies: WriteReplies, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A device output (``-o /dev/null``) is written in place: root's atomic rename must not
    replace the device node by a file. A null device of our own stands in for /dev/null."""
    device = Path("/dev/null")
    if os.geteuid() == 0:
        device = tmp_path / "null"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    for args in (["analyze", "{scan}"], ["report", "{scan}"], ["ipset", "build", "{scan}"]):
        argv = [a.replace("{scan}", write_replies(GOOD, "s.parquet")) for a in args]
        code, _, err = _run([*argv, "-o", str(device)], capsys)
        assert code == 0, err
        assert device.is_char_device()


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "{scan}", "--json"],
        ["analyze", "{scan}"],
        ["ipset", "list", "{set}"],
        ["ipset", "count", "{set}", "--json"],
    ],
)
def test_a_full_stdout_is_one_line_naming_stdout(
    args: list[str], write_replies: WriteReplies, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = write_replies(GOOD, "s.parquet")
    ipset = tmp_path / "s.set"
    assert _run(["ipset", "build", scan, "-o", str(ipset)], capsys)[0] == 0
    argv = [a.replace("{scan}", scan).replace("{set}", str(ipset)) for a in args]
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*LIVENESS, *argv], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120
        )
    assert done.returncode == 1
    _one_error_line(done.stderr, "stdout", "No space left on device")


def test_a_closed_stdout_pipe_ends_quietly(write_replies: WriteReplies, tmp_path: Path) -> None:
    scan = write_replies(GOOD * 50, "s.parquet")
    with subprocess.Popen(
        [*LIVENESS, "analyze", scan, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader is gone before the result is written
        err = process.stderr.read().decode()
        code = process.wait(timeout=120)
    assert code == 141 and "Traceback" not in err


def test_ipset_from_text_huge_line_is_short(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "list.txt"
    text.write_text("198.18.0.1\n" + "x" * 2_000_000 + "\n")
    code, _, err = _run(["ipset", "from-text", str(text), "-o", str(tmp_path / "o.set")], capsys)
    assert code == 2 and len(err) < 1000
    _one_error_line(err, "line 2")
