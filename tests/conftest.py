"""Shared test fixtures: the ``root`` marker skips where namespaces cannot be made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netns_helpers import VETH_SCANNER, run_ip


def _can_make_namespaces() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"lvprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return made


CAN_NETNS = _can_make_namespaces()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_root = pytest.mark.skip(reason="needs root and network namespaces")
    for item in items:
        if "root" in item.keywords and not CAN_NETNS:
            item.add_marker(skip_root)


@pytest.fixture(scope="session")
def paper_demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of ``liveness demo`` (the paper spec, default probes), shared by the tests that
    check the scan and the analyses against its ground truth. Returns the demo's JSON result
    and the output directory (replies.parquet, summary.json, truth.parquet, report.html)."""
    if not CAN_NETNS:
        pytest.skip("needs root and network namespaces")
    out = tmp_path_factory.mktemp("paper-demo")
    done = subprocess.run(
        [sys.executable, "-m", "liveness.cli.main", "demo", "-o", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    result["dir"] = Path(out)
    return result


def runrun_ip(*args: str) -> None:
    """``ip ARGS``, failing loudly."""
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veth_pair() -> Iterator[tuple[str, str]]:
    """Namespaces A (the scanner, 198.18.255.1/32) and B (owning 198.18.0.0/16 on lo)."""
    a, b = f"lvrA{os.getpid()}", f"lvrB{os.getpid()}"
    try:
        run_ip("netns", "add", a)
        run_ip("netns", "add", b)
        run_ip("link", "add", "vA", "netns", a, "type", "veth", "peer", "name", "vB", "netns", b)
        run_ip("-n", a, "addr", "add", f"{VETH_SCANNER}/32", "dev", "vA")
        for ns, dev in ((a, "vA"), (b, "vB")):
            run_ip("-n", ns, "link", "set", dev, "up")
            run_ip("-n", ns, "link", "set", "lo", "up")
        run_ip("-n", b, "route", "add", "local", "198.18.0.0/16", "dev", "lo")
        run_ip("-n", b, "route", "add", f"{VETH_SCANNER}/32", "dev", "vB", "table", "local")
        run_ip(
            "-n", a, "route", "add", "198.18.0.0/16", "via", "198.18.255.254", "dev", "vA", "onlink"
        )
        mac_b = subprocess.run(
            ["ip", "netns", "exec", b, "cat", "/sys/class/net/vB/address"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        run_ip("-n", a, "neigh", "replace", "198.18.255.254", "lladdr", mac_b, "dev", "vA",
            "nud", "permanent")  # fmt: skip
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
