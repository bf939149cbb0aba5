"""The HTML report (self-contained, renders in headless Chromium), the terminal table, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from analysis_replies import WriteReplies
from handmade_rows import ROWS

from chromium import chromium, screenshot
from liveness.analysis import summarize
from liveness.analysis.addressmap import hilbert_grid, hilbert_xy
from liveness.analysis.report import write_report
from liveness.analysis.tables import format_headline
from liveness.cli.main import main


@pytest.fixture
def scan(write_replies: WriteReplies) -> str:
    return write_replies(ROWS, "scan.parquet")


def test_report_is_self_contained(scan: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_report(summarize([scan]), str(out), {"seed": 7, "probes": ["icmp_echo"]})
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 7
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched at view time
    assert "P(active for B | active for A)" in text and "seed" in text
    assert "198.18.0.0/22" in text


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(scan: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_report(summarize([scan]), str(out))
    png = tmp_path / "shot.png"
    screenshot(out, png, height=2000)
    assert png.exists() and png.stat().st_size > 10_000
    matplotlib_image = pytest.importorskip("matplotlib.image")
    pixels = matplotlib_image.imread(str(png))
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    # not blank: many distinct colours (figures) and a fair share of non-white pixels
    rgb = (pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 50
    assert (rgb.min(axis=1) < 200).mean() > 0.05


def test_hilbert_curve_is_a_bijection_of_neighbours() -> None:
    order = 4
    d = np.arange(1 << (2 * order), dtype=np.int64)
    x, y = hilbert_xy(order, d)
    assert len(set(zip(x.tolist(), y.tolist(), strict=True))) == d.size
    steps = np.abs(np.diff(x)) + np.abs(np.diff(y))
    assert (steps == 1).all()  # consecutive cells are adjacent
    grid = hilbert_grid("12" * 256)  # 512 cells: two 16x16 squares side by side
    assert grid.shape == (16, 32) and (grid >= 1).all()


def test_headline_table_shows_the_numbers(scan: str) -> None:
    summary = summarize([scan])
    table = format_headline(summary)
    assert f"{summary['coverage']['all']} alive addresses" in table
    assert "tarpits" in table and "200.0%" in table


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run ``liveness ARGS`` in-process: (exit status, stdout)."""
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().out


def test_cli_analyze_json_and_output_file(
    scan: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summary.json"
    code, stdout = _run(["analyze", scan, "-o", str(out), "--json"], capsys)
    assert code == 0
    printed = json.loads(stdout)
    assert printed == json.loads(out.read_text())
    assert printed["coverage"]["all"] == 12


def test_cli_analyze_bad_file_keeps_others_and_exits_2(
    scan: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summary.json"
    absent = str(tmp_path / "absent.parquet")
    code, stdout = _run(["analyze", scan, absent, "-o", str(out)], capsys)
    assert code == 2 and "alive addresses" in stdout
    saved = json.loads(out.read_text())
    assert saved["inputs"]["errors"] == 1 and saved["coverage"]["all"] == 12


def test_cli_report_from_summary(
    scan: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary_path = tmp_path / "summary.json"
    assert _run(["analyze", scan, "-o", str(summary_path)], capsys)[0] == 0
    html_path = tmp_path / "report.html"
    code, stdout = _run(
        ["report", "--summary", str(summary_path), "-o", str(html_path), "--json"], capsys
    )
    assert code == 0
    assert json.loads(stdout)["report"] == str(html_path)
    assert "Liveness scan report" in html_path.read_text()


def test_cli_report_rejects_a_non_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"a": 1}')
    code, _ = _run(["report", "--summary", str(bogus), "-o", str(tmp_path / "r.html")], capsys)
    assert code == 2
    assert not (tmp_path / "r.html").exists()


def test_cli_workers_and_dask_are_exclusive(scan: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run(["analyze", scan, "--workers", "2", "--dask", "tcp://127.0.0.1:1"], capsys)
    assert code == 2
