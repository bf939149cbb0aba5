"""tcpdump at a testbed's router, on one VP's link, of what that VP sends (the scan tests)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

from liveness.testbed import Testbed


def capture_at_router(tb: Testbed, vp: str, pcap: Path, *bpf: str) -> subprocess.Popen[bytes]:
    """Start capturing (``bpf``: an optional tcpdump filter); returns once it listens."""
    link = next(link for link in tb.layout.vps if link.name == vp)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", tb.layout.router_ns, "tcpdump", "-U", "-n", "-i",
         link.router_ifname, "-Q", "in", "-w", str(pcap), *bpf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "listening on ..." once the capture runs
    assert b"listening" in line, line
    return proc


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a capture (SIGINT: tcpdump flushes what it has)."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
