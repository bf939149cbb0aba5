"""The application layer in the HTML report (figure and tables, headless Chromium), in the
paper figure files, and through ``liveness analyze`` / ``liveness report``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from app_rows import ROWS, app_table, without_app_rows

from chromium import chromium, screenshot
from cli_runner import run_cli
from liveness.analysis import summarize, summarize_table
from liveness.analysis.figure_files import write_figures
from liveness.analysis.report import render_report, write_report


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("app") / "scan.parquet"
    pq.write_table(app_table(ROWS), path)
    return str(path)


@pytest.fixture(scope="module")
def summary(scan: str) -> dict[str, Any]:
    return summarize([scan])


def _figures(text: str) -> int:
    return len(re.findall(r'src="data:image/png;base64,', text))


def _cells(text: str, first: str) -> list[str]:
    """The cells of the first table row of ``text`` whose first cell is ``first``."""
    for row in re.findall(r"<tr>(.*?)</tr>", text, flags=re.S):
        cells = [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S)
        ]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r}")


def test_report_has_the_app_layer_figure_and_tables(summary: dict[str, Any]) -> None:
    text = render_report(summary)
    plain = render_report(summarize_table(app_table(without_app_rows(ROWS)), "plain"))
    assert _figures(text) == _figures(plain) + 2  # one figure per family
    assert "Application layer on TCP (IPv4)" in text and "Application layer on TCP (IPv6)" in text
    assert "SYN-ACK vs application-active vs application-alive" in text
    assert _cells(text, "22")[:8] == ["22", "ssh", "5", "2", "1", "80.0%", "75.0%", "http 1"]
    assert _cells(text, "443")[-1] == "ssh 1"
    assert "SYN-ACK without a service (app-active on no port)" in text
    assert _cells(text, "SYN-ACK without a service (app-active on no port)") == [
        "SYN-ACK without a service (app-active on no port)",
        "3",
        "23.1%",
    ]
    assert _cells(text, "no service: tarpit or ACKing middlebox")[1] == "1"
    assert _cells(text, "serve data on some port: not a tarpit")[1] == "1"
    assert "Not measured" not in text


def test_report_says_when_not_measured() -> None:
    plain = summarize_table(app_table(without_app_rows(ROWS)), "plain")
    text = render_report(plain)
    assert text.count("Not measured: the input has no answers to <code>--app-layer</code>") == 2
    assert "SYN-ACK without a service" not in text
    old = {k: v for k, v in plain.items() if k != "app_layer"}  # written before analysis 10
    assert "Application layer on TCP</h2>" not in render_report(old)


def test_figure_files_hold_the_app_layer_figure(summary: dict[str, Any], tmp_path: Path) -> None:
    names = {p.name for p in write_figures(summary, tmp_path / "figures")}
    assert {"app_layer.pdf", "app_layer.svg", "app_layer.csv", "app_layer_ipv6.svg"} <= names
    rows = dict(
        line.split(",", 1)
        for line in (tmp_path / "figures" / "app_layer.csv").read_text().splitlines()
    )
    assert rows["app_layer.ports.80.transport_alive"] == "6"
    assert rows["app_layer.headline.synack_without_service"] == "3"
    plain = summarize_table(app_table(without_app_rows(ROWS)), "plain")
    assert not any("app_layer" in p.name for p in write_figures(plain, tmp_path / "plain"))


def test_cli_analyze_and_report(
    scan: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summary.json"
    capsys.readouterr()
    code, printed, _ = run_cli(["analyze", scan, "-o", str(out)], capsys)
    assert code == 0 and "application layer on TCP (IPv4)" in printed
    saved = json.loads(out.read_text())
    assert saved["app_layer"]["headline"]["synack_without_service"] == 3
    assert saved["ipv6"]["app_layer"]["tarpits"]["no_service"] == 1
    html_path = tmp_path / "report.html"
    assert run_cli(["report", "--summary", str(out), "-o", str(html_path)], capsys)[0] == 0
    assert "Application layer on TCP (IPv6)" in html_path.read_text()


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(summary: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_report(summary, str(out))
    png = tmp_path / "shot.png"
    screenshot(out, png, height=2400)
    assert png.exists() and png.stat().st_size > 10_000
    matplotlib_image = pytest.importorskip("matplotlib.image")
    pixels = matplotlib_image.imread(str(png))
    rgb = (pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 50
    assert (rgb.min(axis=1) < 200).mean() > 0.05
