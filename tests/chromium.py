"""Headless Chromium for the report tests: take a screenshot of an HTML page."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path


def chromium() -> str | None:
    """The Chromium binary, or None where it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, png: Path, height: int) -> float:
    """Render ``page`` headless into ``png`` (1200 x ``height``); the seconds it took."""
    binary = chromium()
    assert binary is not None
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={png.parent / 'profile'}",
        f"--screenshot={png}",
        f"--window-size=1200,{height}",
        page.as_uri(),
    ]
    began = time.perf_counter()
    subprocess.run(command, capture_output=True, timeout=120, check=False, cwd=png.parent)
    return time.perf_counter() - began
