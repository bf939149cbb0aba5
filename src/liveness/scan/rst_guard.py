"""The RST guard of ``--app-layer``: for the scan's lifetime, this machine's kernel must not reset
the connections the scan completes statelessly.

A SYN-ACK to a port no socket owns makes the kernel answer with a RST, which would close the
connection at the target before our ACK and payload arrive. The guard is an nftables table in
the scanner's own network namespace, dropping outgoing TCP RSTs from the scan's source-port
range; the scan's own packets leave through the packet socket and never pass the output hook,
so its closing RSTs still go. Nothing outside that namespace is touched.

Removal is not left to the scan's exit path alone: a small keeper process, forked while the scan
still holds CAP_NET_ADMIN, waits on a pipe whose other end only the scan's processes hold, and
deletes the table when the pipe closes, whichever way they ended (SIGKILL included). The table
is also recorded beside the checkpoint (``CHECKPOINT.guard.json``), so a ``--resume`` replaces
it and ``liveness cleanup`` removes one left behind when the keeper itself was killed. Tables
are named ``liveness_rst_guard_<keeper pid>``; ``liveness cleanup`` with no checkpoint removes
every such table whose keeper is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liveness.errors import RunError

__all__ = ["RstGuard", "find_guards", "install_guard", "remove_guard", "remove_stale_guards"]

TABLE_PREFIX = "liveness_rst_guard_"
_TABLE_NAME = re.compile(rf"^table inet ({TABLE_PREFIX}(\d+))\s*$", re.M)
HOW_TO_ALLOW = (
    "run the scan as root (CAP_NET_ADMIN) in its own network namespace with nftables "
    "installed (Debian: nftables), or leave out --app-layer"
)


@dataclass
class RstGuard:
    """An installed guard: its table, the namespace it lives in, the keeper that removes it."""

    table: str
    netns: str
    keeper_pid: int
    record: Path | None
    pipe: int
    ports: str = ""

    def release(self, wait_s: float = 10.0) -> bool:
        """End of the scan: close our end of the pipe and wait for the keeper to remove the
        table (it kept the privilege to; the scan dropped it). True once the table is gone."""
        with contextlib.suppress(OSError):
            os.close(self.pipe)
        deadline = time.monotonic() + wait_s
        status: int | None = None
        while status is None and time.monotonic() < deadline:
            try:
                pid, code = os.waitpid(self.keeper_pid, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                status = os.waitstatus_to_exitcode(code)
            else:
                time.sleep(0.02)
        gone = status == 0 or remove_guard(self.table)
        if gone and self.record is not None:
            with contextlib.suppress(FileNotFoundError):
                self.record.unlink()
        return gone

    def describe(self) -> dict[str, Any]:
        """For the scan's metadata."""
        return {"table": self.table, "netns": self.netns, "sport_range": self.ports}


def _netns() -> str:
    """The current network namespace's identity (``net:[inode]``)."""
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return "unknown"


def _nft(script: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    nft = shutil.which("nft")
    if nft is None:
        raise RunError(f"--app-layer: the nft command is missing, so no RST guard: {HOW_TO_ALLOW}")
    return subprocess.run(
        [nft, *args], input=script, capture_output=True, text=True, check=False, timeout=30
    )


def _rules(table: str, sport_base: int, sport_count: int) -> str:
    last = sport_base + sport_count - 1
    return (
        f"table inet {table} {{\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority 0; policy accept;\n"
        f"\t\ttcp sport {sport_base}-{last} tcp flags & rst == rst drop\n"
        "\t}\n"
        "}\n"
    )


def install_guard(sport_base: int, sport_count: int, record: Path | None) -> RstGuard:
    """Install the guard for source ports ``[sport_base, sport_base + sport_count)``, start its
    keeper, and write ``record``; raises RunError (saying how to allow it) if it cannot."""
    if shutil.which("nft") is None:
        raise RunError(f"--app-layer: the nft command is missing, so no RST guard: {HOW_TO_ALLOW}")
    if record is not None:
        remove_recorded(record)  # a --resume after a crash: the old table goes first
    remove_stale_guards()
    read_end, write_end = os.pipe()
    keeper = os.fork()
    if keeper == 0:  # the keeper: wait until every holder of the write end is gone
        os.close(write_end)
        _keep(read_end, f"{TABLE_PREFIX}{os.getpid()}")
    os.close(read_end)
    table = f"{TABLE_PREFIX}{keeper}"
    netns = _netns()
    if record is not None:  # recorded before it exists: a kill in between strands nothing
        record.write_text(json.dumps({"table": table, "netns": netns, "keeper_pid": keeper}))
    result = _nft(_rules(table, sport_base, sport_count), "-f", "-")
    if result.returncode != 0:
        os.close(write_end)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(keeper, 0)
        if record is not None:
            with contextlib.suppress(FileNotFoundError):
                record.unlink()
        reason = (result.stderr.strip().splitlines() or ["nft failed"])[-1]
        raise RunError(
            f"--app-layer needs a firewall rule so that this machine's kernel does not reset "
            f"the connections the scan opens, and nft refused it ({reason}): {HOW_TO_ALLOW}"
        )
    ports = f"{sport_base}-{sport_base + sport_count - 1}"
    guard = RstGuard(table, netns, keeper, record, write_end, ports)
    return guard


def _keep(read_end: int, table: str) -> None:
    """The keeper's life: ignore the signals a terminal sends the scan, wait for the pipe to
    close, remove the table, exit (status 0 once it is gone; never returning into the scan's
    code)."""
    removed = False
    try:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)
        while True:
            try:
                if not os.read(read_end, 64):
                    break
            except InterruptedError:
                continue
        removed = remove_guard(table)
    finally:
        os._exit(0 if removed else 1)


def remove_guard(table: str) -> bool:
    """Delete the table if it exists; True if it was there."""
    if not table.startswith(TABLE_PREFIX):
        raise ValueError(f"not an RST guard table: {table!r}")
    with contextlib.suppress(RunError, OSError, subprocess.SubprocessError):
        return _nft(None, "delete", "table", "inet", table).returncode == 0
    return False


def remove_recorded(record: Path) -> bool:
    """Remove the guard a checkpoint's record names, if it is in this namespace."""
    try:
        saved = json.loads(record.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    removed = False
    if saved.get("netns") == _netns() and str(saved.get("table", "")).startswith(TABLE_PREFIX):
        removed = remove_guard(str(saved["table"]))
    with contextlib.suppress(FileNotFoundError):
        record.unlink()
    return removed


def find_guards() -> dict[str, int]:
    """The RST guard tables of this namespace, with their keepers' pids."""
    with contextlib.suppress(RunError, OSError, subprocess.SubprocessError):
        result = _nft(None, "list", "tables")
        if result.returncode == 0:
            return {m.group(1): int(m.group(2)) for m in _TABLE_NAME.finditer(result.stdout)}
    return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_guards() -> list[str]:
    """Remove the guards whose keeper is gone (a scan killed with its whole process group)."""
    return [t for t, pid in find_guards().items() if not _alive(pid) and remove_guard(t)]
