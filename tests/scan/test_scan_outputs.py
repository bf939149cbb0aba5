"""Nothing lost, nothing clobbered: where a live scan writes, how it stops, what it refuses.

Each test scans a testbed it brings up (removed even when the test fails) from a VP's namespace,
as a user would, and checks the files and exit statuses left behind.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from liveness.output import read_replies
from liveness.testbed import Testbed, load_spec

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def testbed() -> Iterator[Testbed]:
    with Testbed(load_spec("small")) as tb:
        yield tb


def _argv(tb: Testbed, tmp: Path, *extra: str, targets: list[str] | None = None) -> list[str]:
    allow = tmp / "allow.txt"
    allow.write_text("198.18.0.0/15\n")
    return tb.vps["vp1"].scan_argv(
        targets or tb.targets, allow, "-q", "--retransmit-delay", "0", "-c", "1", *extra
    )


def _rows_in_journal(path: Path) -> int:
    from liveness.output.journal import read_journal

    _, batches = read_journal(str(path))
    return sum(batch.num_rows for batch in batches)


def _rows(path: Path) -> int:
    return sum(batch.num_rows for batch in read_replies(str(path)))


def test_a_device_named_by_o_stays_a_device_and_nothing_lands_beside_it(
    testbed: Testbed, tmp_path: Path
) -> None:
    node = tmp_path / "fakenull"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a scratch /dev/null
    # The private scratch directory goes to TMPDIR: here, so a leftover would show.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    argv = _argv(testbed, tmp_path, "-o", str(node))
    done = testbed.run("vp1", argv, capture_output=True, env=env)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allow.txt", "fakenull"]


def test_a_full_device_is_an_error_not_a_success(testbed: Testbed, tmp_path: Path) -> None:
    node = tmp_path / "fakefull"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a scratch /dev/full
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    argv = _argv(testbed, tmp_path, "-o", str(node))
    done = testbed.run("vp1", argv, capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert "No space left on device" in done.stderr and "Traceback" not in done.stderr
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    # Nothing is lost: the rows stay in the journal the error names, and only there.
    (kept,) = [p for p in tmp_path.iterdir() if p.name.startswith("liveness-scan-")]
    assert str(kept / "output.journal") in done.stderr
    assert _rows_in_journal(kept / "output.journal") > 0


def test_a_symlink_is_followed_and_stays_a_symlink(testbed: Testbed, tmp_path: Path) -> None:
    target = tmp_path / "real.parquet"
    link = tmp_path / "link.parquet"
    link.symlink_to(target)
    done = testbed.run("vp1", _argv(testbed, tmp_path, "-o", str(link)), capture_output=True)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert pq.read_table(target).num_rows > 0


def test_an_unwritable_status_file_is_refused_before_the_previous_output_is_touched(
    testbed: Testbed, tmp_path: Path
) -> None:
    previous = tmp_path / "pre.parquet"
    assert testbed.run("vp1", _argv(testbed, tmp_path, "-o", str(previous))).returncode == 0
    before = previous.read_bytes()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    for flag in ("-u", "-m"):
        done = testbed.run(
            "vp1",
            _argv(testbed, tmp_path, "-o", str(previous), flag, str(locked / "x")),
            capture_output=True,
            text=True,
        )
        # Root ignores permission bits; the directory is also not writable by mode for others.
        if done.returncode == 0 and os.access(locked, os.W_OK):
            pytest.skip("root can write the read-only directory here")
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and flag in lines[0]
        assert previous.read_bytes() == before


def test_a_read_only_file_system_target_is_refused_before_anything_is_sent(
    testbed: Testbed, tmp_path: Path
) -> None:
    previous = tmp_path / "pre.csv"
    previous.write_text("kept\n")
    done = testbed.run(
        "vp1",
        _argv(testbed, tmp_path, "-o", str(previous), "-m", "/proc/version"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "-m/--metadata-file" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert previous.read_text() == "kept\n"


def test_resume_refuses_another_target_space_of_the_same_size(
    testbed: Testbed, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    first = _argv(testbed, tmp_path, "-o", str(out), "-e", "42", targets=["198.18.0.0/23"])
    proc = testbed.popen("vp1", [*first, "-r", "200"])
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    other = _argv(
        testbed, tmp_path, "-o", str(out), "-e", "42", "--resume", targets=["198.18.2.0/23"]
    )
    done = testbed.run("vp1", other, capture_output=True, text=True)
    assert done.returncode == 2
    assert "target_space_sha256" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_scan_cleanly_and_resume_finishes_it(
    testbed: Testbed, tmp_path: Path, sig: signal.Signals, status: int
) -> None:
    out = tmp_path / "out.parquet"
    meta = tmp_path / "meta.json"
    argv = _argv(testbed, tmp_path, "-o", str(out), "-m", str(meta), "-e", "7", "-r", "2000")
    proc = testbed.popen("vp1", argv, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr and f"stopped: {sig.name}" in stderr
    # The output is complete when the process has returned: no journal left, rows readable.
    assert not Path(f"{out}.journal").exists()
    interrupted = json.loads(meta.read_text())
    assert interrupted["interrupted"] == sig.name
    rows_before = _rows(out)
    assert rows_before == interrupted["rows_written"] > 0
    sent_before = interrupted["targets_probed"]
    assert 0 < sent_before < 1024
    resumed = testbed.run("vp1", [*argv, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    finished = json.loads(meta.read_text())
    assert finished["interrupted"] is None and finished["targets_probed"] == 1024
    # Nothing probed twice: the resumed run sent only the targets the first one had not.
    assert finished["packets_sent"] == (1024 - sent_before) * len(finished["probes"])


def test_a_closed_pipe_is_reported_not_counted_as_success(testbed: Testbed, tmp_path: Path) -> None:
    argv = _argv(testbed, tmp_path, "-o", "-")
    shell = " ".join(argv) + " | head -2 >/dev/null; echo status=${PIPESTATUS[0]}"
    done = testbed.run("vp1", ["bash", "-c", shell], capture_output=True, text=True)
    assert "status=141" in done.stdout, done.stderr
    assert "replies written" not in done.stderr and "Traceback" not in done.stderr
    assert "the reader closed the output" in done.stderr
