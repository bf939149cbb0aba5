"""The ``liveness`` command starts no BLAS worker threads: idle OpenBLAS workers spin, and in a
scan they took CPU from the sender and the kernel. A user's own setting is kept."""

from __future__ import annotations

import os
import subprocess
import sys

# what the command's process holds once numpy is loaded: its threads, and the setting
PROBE = (
    "import liveness.cli.main, os, numpy; "
    "print(len(os.listdir('/proc/self/task')), os.environ['OPENBLAS_NUM_THREADS'])"
)


def _run(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_the_command_runs_numpy_on_its_own_thread() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    assert _run(env) == ["1", "1"]


def test_a_users_setting_is_kept() -> None:
    assert _run({**os.environ, "OPENBLAS_NUM_THREADS": "2"})[1] == "2"
