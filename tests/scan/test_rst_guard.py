"""The ``--app-layer`` RST guard in a network namespace of the test's own: installed, removed on
every way out (a clean end, SIGKILL of the scan, SIGKILL of everything and ``liveness cleanup``),
never touching the host's namespace, and doing what it is for (the kernel's RSTs from the scan's
ports are dropped, other traffic passes)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs nftables"),
]

HOLD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from liveness.scan.rst_guard import install_guard
    record = Path(sys.argv[1]) if sys.argv[1] != "-" else None
    guard = install_guard(40000, 1000, record)
    print(guard.table, guard.keeper_pid, flush=True)
    if sys.argv[2] == "release":
        print("released", guard.release(), flush=True)
    else:
        time.sleep(120)
    """
)


def _tables(ns: str | None) -> set[str]:
    argv = ["nft", "list", "tables"]
    if ns is not None:
        argv = ["ip", "netns", "exec", ns, *argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.startswith("table")}


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"lvguard{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _hold(ns: str, record: Path | None, mode: str) -> tuple[subprocess.Popen[str], str, int]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", HOLD, str(record or "-"), mode],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    table, keeper = proc.stdout.readline().split()
    return proc, table, int(keeper)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


def _gone_within(ns: str, table: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if table not in _tables(ns):
            return True
        time.sleep(0.05)
    return False


def test_a_clean_end_removes_the_guard_and_the_host_is_untouched(
    netns: str, tmp_path: Path
) -> None:
    host_before = _tables(None)
    record = tmp_path / "scan.checkpoint.guard.json"
    proc, table, _ = _hold(netns, record, "release")
    assert proc.stdout is not None
    assert proc.stdout.readline().split() == ["released", "True"]
    proc.wait(10)
    assert table not in _tables(netns)
    assert not record.exists()
    assert _tables(None) == host_before


def test_sigkill_of_the_scan_leaves_the_keeper_to_remove_it(netns: str, tmp_path: Path) -> None:
    host_before = _tables(None)
    proc, table, keeper = _hold(netns, tmp_path / "guard.json", "hold")
    try:
        assert table in _tables(netns)
        assert table not in _tables(None)  # only in the scan's namespace
        listing = subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "list", "table", "inet", table],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "tcp sport 40000-40999" in listing and "drop" in listing
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert _gone_within(netns, table, 5.0)
        deadline = time.monotonic() + 5
        while _alive(keeper) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(keeper)  # its work done, the keeper is gone too
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _tables(None) == host_before


def test_after_killing_everything_cleanup_removes_it(netns: str, tmp_path: Path) -> None:
    record = tmp_path / "scan.parquet.checkpoint.guard.json"
    proc, table, _ = _hold(netns, record, "hold")
    os.killpg(proc.pid, signal.SIGKILL)  # the scan and its keeper together
    proc.wait(10)
    time.sleep(0.2)
    assert table in _tables(netns) and record.exists()
    cleanup = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "liveness.cli.main", "cleanup",
         "-o", str(tmp_path / "scan.parquet"), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cleanup.returncode == 0, cleanup.stderr
    assert table in cleanup.stdout
    assert table not in _tables(netns) and not record.exists()


def test_cleanup_leaves_a_running_scans_guard(netns: str, tmp_path: Path) -> None:
    proc, table, _ = _hold(netns, None, "hold")
    try:
        cleanup = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-m", "liveness.cli.main", "cleanup"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert cleanup.returncode == 0, cleanup.stderr
        assert "belong to running scans" in cleanup.stderr
        assert table in _tables(netns)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the keeper ignores it; the holder dies
        proc.wait(10)
    assert _gone_within(netns, table, 5.0)


def test_the_guard_drops_the_kernels_resets_from_the_scan_ports_only(netns: str) -> None:
    """A connection to a closed port on loopback: the kernel's RST from our port range is
    dropped (the connect times out), from another port it passes (refused at once)."""
    probe = textwrap.dedent(
        """
        import socket, sys
        def attempt(port):
            s = socket.socket()
            s.settimeout(1.5)
            try:
                s.connect(("127.0.0.1", port))
                return "connected"
            except ConnectionRefusedError:
                return "refused"
            except OSError:
                return "timeout"
            finally:
                s.close()
        print(attempt(40500), attempt(39999))
        """
    )  # the RST comes from the closed port: 40500 is in the guard's range, 39999 is not
    proc, table, _ = _hold(netns, None, "hold")
    try:
        run = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", probe],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert run.stdout.split() == ["timeout", "refused"], run.stderr
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "delete", "table", "inet", table], check=False
        )
