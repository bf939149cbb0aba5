"""``liveness monitor`` refuses what would not work or not take effect (issue 18): one line, exit
2, before anything is written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from monitor_helpers import census_file, run

from liveness.cli.monitor import parse_params
from liveness.errors import InputError
from liveness.monitor.params import TrinocularParams


def _monitor(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    census = census_file(tmp_path / "census.txt")
    return run(
        "monitor", "--model", "--vp", "v", "--census", str(census), "--rounds", "4",
        "-o", str(tmp_path / "out"), *args,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--param", "block_size=7"], ["block_size", "fixed at 256"]),
        (["--param", "round_s=60"], ["round_s", "--round-s"]),
        (["--param", "rate_window_s=60", "--scale-rate-window"], ["--no-scale-rate-window"]),
        (["--param", "seed=1", "--param", "seed=2"], ["given twice"]),
        (["--param", "max_probes_per_round=1e12"], ["max_probes_per_round must be an integer"]),
        (["--param", "max_probes_per_round=99"], ["max_probes_per_round", "1..16"]),
        (["--param", "loss_rate=nan"], ["loss_rate must be a finite number"]),
        (["--param", "loss_rate=x"], ["loss_rate must be a number"]),
        (["--param", "sparse_availability=2"], ["sparse_availability", "[0, 1]"]),
        (["--model-outage", "198.18.2.0/24@5-2"], ["--model-outage", "END must be after FIRST"]),
        (["--model-outage", "198.18.2.0/24@3-3"], ["END must be after FIRST"]),
        (["--model-outage", "198.18.2.0/24@9-12"], ["starts after the last round"]),
        (["--vp", "../escape"], ["--vp", "names the output files"]),
        (["--round-s", "nan"], ["--round-s", "not a finite number"]),
    ],
)
def test_refused_with_one_line(tmp_path: Path, args: list[str], words: list[str]) -> None:
    done = _monitor(tmp_path, *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("liveness: error: ") and "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.fsdb").exists()


def test_accepted_params_do_take_effect() -> None:
    params = parse_params(("loss_rate=0.05", "max_probes_per_round=4", "seed=9"), 60.0)
    assert (params.loss_rate, params.max_probes_per_round, params.seed) == (0.05, 4, 9)
    assert params.round_s == 60.0
    with pytest.raises(InputError, match="one of"):
        parse_params(("nosuch=1",), 60.0)
    assert "block_size" in TrinocularParams.names()  # a field, but not settable by --param


def test_an_empty_census_is_refused(tmp_path: Path) -> None:
    census = tmp_path / "empty.txt"
    census.write_text("# nothing yet\n")
    done = run("monitor", "--model", "--vp", "v", "--census", str(census), "--rounds", "2",
               "-o", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 2 and "no address to monitor" in done.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root for a ro mount"
)
def test_read_only_output_dir_is_one_line(tmp_path: Path) -> None:
    census = census_file(tmp_path / "census.txt")
    out = tmp_path / "ro"
    out.mkdir()
    (out / "v.fsdb").write_text("earlier\n")
    cli = [sys.executable, "-m", "liveness.cli.main", "monitor", "--model", "--vp", "v",
           "--census", str(census), "--rounds", "2"]  # fmt: skip
    for target in (out, out / "sub"):
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(out),
             *cli, "-o", str(target)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert "-o" in lines[0] and "read-only file system" in lines[0]
    assert (out / "v.fsdb").read_text() == "earlier\n"
