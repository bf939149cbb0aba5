"""Helpers shared by the monitor's CLI tests: a census file, and the CLI as a subprocess.

A plain module (not ``conftest``) so test files import it by name.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

LIVENESS = str(Path(sys.executable).parent / "liveness")


def census_file(path: Path) -> Path:
    rng = np.random.default_rng(3)
    lines = []
    for third in range(12):
        count = 8 if third == 11 else 30  # 198.18.11.0/24 is too small to measure
        hosts = rng.choice(np.arange(1, 255), count, replace=False)
        lines += [f"198.18.{third}.{h}" for h in hosts]
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LIVENESS, *args], capture_output=True, text=True, timeout=120)
