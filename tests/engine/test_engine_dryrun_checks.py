"""A dry run is a faithful rehearsal: the live scan's checks, the live scan's frames.

Every bad value a live scan refuses is refused by ``-d`` too (exit 2, one line, no traceback),
``-P`` copies appear in the frames, and a full output device is an error, not a success.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from liveness.net.pcap import read_pcap

NET = "198.18.0.0/28"


def _scan(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    allow = tmp_path / "allow.txt"
    allow.write_text(f"{NET}\n")
    argv = [sys.executable, "-m", "liveness.cli.main", "scan", "-d", NET, "-w", str(allow), "-S"]
    argv.append("198.18.255.1")
    return subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["-r", "-5"], "-r/--rate"),
        (["-B", "garbage"], "-B/--bandwidth"),
        (["-P", "0"], "-P/--probes-per-target"),
        (["-f", "bogus"], "-f/--output-fields"),
        (["--output-filter", "success = = 1"], "--output-filter"),
        (["--retransmit-delay", "nan"], "--retransmit-delay"),
        (["--retransmit-delay", "inf"], "--retransmit-delay"),
        (["-c", "nan"], "-c/--cooldown-time"),
        (["-c", "-1"], "-c/--cooldown-time"),
        (["-t", "inf"], "-t/--max-runtime"),
        (["-t", "0"], "-t/--max-runtime"),
    ],
)
def test_the_dry_run_refuses_what_the_live_scan_refuses(
    tmp_path: Path, flags: list[str], named: str
) -> None:
    done = _scan(tmp_path, *flags)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_copies_are_in_the_dry_run_frames_target_major(tmp_path: Path) -> None:
    pcap = tmp_path / "p.pcap"
    once = _scan(tmp_path, "--retransmit-delay", "0", "--json", "--pcap-out", str(pcap))
    assert once.returncode == 0, once.stderr
    twice = _scan(tmp_path, "--retransmit-delay", "0", "--json", "-P", "2")
    assert twice.returncode == 0, twice.stderr
    frames_once = json.loads(once.stdout)["frames"]
    assert json.loads(twice.stdout)["frames"] == 2 * frames_once == 2 * 16 * 9
    # As on the wire: a target's probes leave together, one target after another.
    batch, _ = read_pcap(pcap)
    destinations = [bytes(row[30:34]) for row in batch.frames]
    assert all(len(set(destinations[i : i + 9])) == 1 for i in range(0, len(destinations), 9))
    assert len(set(destinations)) == 16


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
@pytest.mark.parametrize("flag", ["-o", "--pcap-out"])
def test_a_full_device_fails_with_one_line(tmp_path: Path, flag: str) -> None:
    node = tmp_path / "full"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a scratch /dev/full
    done = _scan(tmp_path, flag, str(node))
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "No space left on device" in lines[-1] and "Traceback" not in done.stderr
    assert stat.S_ISCHR(os.lstat(node).st_mode)
