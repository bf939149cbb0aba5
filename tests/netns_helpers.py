"""Helpers for tests that build their own network namespaces (the ``veth_pair`` fixture of
``conftest.py`` uses them): the scanner's address there, and ``ip`` that fails loudly.

A plain module (not ``conftest``) so test files import it by name.
"""

from __future__ import annotations

import subprocess

VETH_SCANNER = "198.18.255.1"  # namespace A's /32; namespace B owns 198.18.0.0/16 on lo


def run_ip(*args: str) -> None:
    """``ip ARGS``; raises CalledProcessError with its output on failure."""
    subprocess.run(["ip", *args], check=True, capture_output=True)
