"""Shared test fixtures: the ``root`` marker skips where namespaces cannot be made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


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
