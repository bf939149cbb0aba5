"""What a running testbed made, on disk, so ``down`` can remove it even after a crash.

One JSON record per testbed (``<state dir>/<id>.json``) lists its namespaces and the processes it
started (pid and kernel start time, so a recycled pid is never killed), and a folder
(``<state dir>/<id>/``) holds its generated files and logs. The record is written before the
first namespace is made and updated as things are added.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from liveness.errors import InputError

__all__ = [
    "NETNS_PREFIX",
    "existing_namespaces",
    "kill_process",
    "list_ids",
    "process_alive",
    "process_start",
    "read_state",
    "remove_testbed",
    "state_dir",
    "write_state",
]

NETNS_PREFIX = "lv"


def state_dir() -> Path:
    """Where records live (``LIVENESS_TESTBED_STATE`` overrides ``/run/liveness/testbed``)."""
    return Path(os.environ.get("LIVENESS_TESTBED_STATE", "/run/liveness/testbed"))


def _record_path(testbed_id: str) -> Path:
    return state_dir() / f"{testbed_id}.json"


def write_state(record: dict[str, Any]) -> None:
    """Write a testbed's record atomically."""
    path = _record_path(record["id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


def read_state(testbed_id: str) -> dict[str, Any]:
    """A testbed's record; InputError when there is none."""
    try:
        record: dict[str, Any] = json.loads(_record_path(testbed_id).read_text())
    except FileNotFoundError:
        raise InputError(
            f"--id {testbed_id}: no such testbed (see liveness testbed status)"
        ) from None
    return record


def list_ids() -> list[str]:
    """Ids of every recorded testbed, oldest first."""
    folder = state_dir()
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    return [p.stem for p in paths]


def process_start(pid: int) -> int | None:
    """The kernel start time of a process (clock ticks since boot), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def process_alive(proc: dict[str, Any]) -> bool:
    """The recorded process still runs (same pid and same start time)."""
    return bool(process_start(int(proc["pid"])) == proc["start"])


def kill_process(proc: dict[str, Any], grace: float = 2.0) -> None:
    """SIGTERM a recorded process, then SIGKILL after ``grace`` seconds; reap it if ours."""
    pid = int(proc["pid"])
    if not process_alive(proc):
        _reap(pid)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not process_alive(proc):
            return
        time.sleep(0.02)
    if process_alive(proc):
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            _reap(pid)
            if not process_alive(proc):
                return
            time.sleep(0.02)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def existing_namespaces() -> set[str]:
    """Names of the network namespaces that exist now."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _kill_inside(netns: str) -> None:
    """SIGKILL what still runs inside one of the testbed's namespaces: the children its
    servers fork per connection (sshd, socat) outlive their parent's SIGTERM."""
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout
    for word in out.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(word), signal.SIGKILL)
            _reap(int(word))


def remove_testbed(record: dict[str, Any]) -> list[str]:
    """Kill a testbed's processes, delete its namespaces, files and record; return what it did."""
    done = []
    for proc in record.get("processes", []):
        if process_alive(proc):
            done.append(f"killed {proc['name']} ({proc['pid']})")
        kill_process(proc)
    present = existing_namespaces()
    for ns in record.get("namespaces", []):
        if ns in present:
            _kill_inside(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            done.append(f"deleted netns {ns}")
    shutil.rmtree(state_dir() / record["id"], ignore_errors=True)
    _record_path(record["id"]).unlink(missing_ok=True)
    return done
