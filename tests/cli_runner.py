"""Run ``liveness`` in-process for the reach CLI tests: exit status, stdout and stderr."""

from __future__ import annotations

import pytest

from liveness.cli.main import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``liveness ARGS``: (exit status, stdout, stderr), as a shell would see them."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
