"""Drop privileges once the packet sockets are open: the scan needs no capability after that.

The process keeps its user id (so it can still finish the output files it owns) but loses every
capability, from the effective, permitted, inheritable and bounding sets, and sets
``no_new_privs`` so nothing it runs can regain them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
from collections.abc import Sequence

from liveness.errors import InputError

__all__ = ["check_writable_without_capabilities", "drop_capabilities", "effective_capabilities"]

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_LAST_CAP_GUESS = 63


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities() -> bool:
    """Drop every capability of this process; True when it worked (or there were none)."""
    if effective_capabilities() == 0:
        return True
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    last_cap = CAP_LAST_CAP_GUESS
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            last_cap = int(handle.read())
    except (OSError, ValueError):
        pass
    for cap in range(last_cap + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        return False
    return effective_capabilities() == 0


def effective_capabilities() -> int:
    """The effective capability mask of this process (from /proc)."""
    with open(f"/proc/{os.getpid()}/status") as handle:
        for line in handle:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def check_writable_without_capabilities(paths: Sequence[tuple[str, str]]) -> None:
    """Fail now if an output (``(flag, path)``) would be refused once capabilities are dropped.

    Root's CAP_DAC_OVERRIDE makes every permission check pass before the drop, so the check runs
    in a forked child that has dropped them as the scan will: it opens each existing file for
    appending (nothing is changed) and creates and removes a file in each directory that will
    receive a file by rename. Devices and FIFOs are only checked for write permission.
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child; its verdict is tested)
        message = b""
        try:
            os.close(read_end)
            drop_capabilities()
            for flag, path in paths:
                problem = _write_problem(path)
                if problem:
                    message = f"{flag}: {path}: {problem}".encode()
                    break
        except BaseException as exc:
            message = f"cannot check the outputs ({exc})".encode()
        finally:
            os.write(write_end, message)
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as verdict:
        problem = verdict.read().decode(errors="replace")
    os.waitpid(child, 0)
    if problem:
        raise InputError(problem + " (checked without root's privileges, as the scan runs)")


def _write_problem(path: str) -> str:
    real = os.path.realpath(path)
    try:
        info: os.stat_result | None = os.stat(real)
    except FileNotFoundError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        return "" if os.access(real, os.W_OK) else "is not writable"
    try:
        if info is not None:
            os.close(os.open(real, os.O_WRONLY | os.O_APPEND))
        probe = os.path.join(os.path.dirname(real) or ".", f".liveness-check-{os.getpid()}")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as exc:
        where = "" if info is None or exc.filename == real else " (its directory)"
        return f"cannot be written{where}: {exc.strerror}"
    return ""
