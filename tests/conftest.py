"""Shared test fixtures: the ``root`` marker skips where namespaces cannot be made."""

from __future__ import annotations

import os
import shutil
import subprocess

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
