"""Drop privileges once the packet sockets are open: the scan needs no capability after that.

The process keeps its user id (so it can still finish the output files it owns) but loses every
capability, from the effective, permitted, inheritable and bounding sets, and sets
``no_new_privs`` so nothing it runs can regain them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["drop_capabilities", "effective_capabilities"]

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
